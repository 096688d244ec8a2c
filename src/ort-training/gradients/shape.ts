/** Reshape and Flatten move no values: the gradient takes the input's shape back. */
import type { GradientContext } from './gradient-types.js';

export function reshapeGradient(ctx: GradientContext): (string | undefined)[] {
  const { b } = ctx;
  const x = ctx.node.inputs[0]!;
  return [b.one('Reshape', [ctx.dy[0]!, b.one('Shape', [x])])];
}
