/** Elu and Selu: dy where x > 0, dy * alpha * exp(x) (= dy * (y + alpha) for Elu) otherwise, times gamma for Selu. */
import type { GradientContext } from './gradient-types.js';

function eluLike(ctx: GradientContext, alpha: number, gamma: number): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const below = b.one('Mul', [b.one('Exp', [b.one('Min', [x, b.scalar(0)])]), b.scalar(alpha * gamma)]);
  const slope = b.one('Where', [b.one('Greater', [x, b.scalar(0)]), b.scalar(gamma), below]);
  return [b.one('Mul', [ctx.dy[0]!, slope])];
}

export function eluGradient(ctx: GradientContext): (string | undefined)[] {
  return eluLike(ctx, ctx.node.attrs.float('alpha', 1), 1);
}

export function seluGradient(ctx: GradientContext): (string | undefined)[] {
  return eluLike(ctx, ctx.node.attrs.float('alpha', 1.6732632423543772), ctx.node.attrs.float('gamma', 1.0507009873554805));
}
