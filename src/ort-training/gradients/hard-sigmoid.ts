/**
 * HardSigmoid and HardSwish, with PyTorch's gradients: HardSigmoid passes alpha * dy where
 * 0 < alpha x + beta < 1; HardSwish gives 0 below -3, (x / 3 + 0.5) dy up to 3 (inclusive), dy above.
 */
import type { GradientContext } from './gradient-types.js';

export function hardSigmoidGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const alpha = node.attrs.float('alpha', 0.2), beta = node.attrs.float('beta', 0.5);
  const z = b.one('Add', [b.one('Mul', [node.inputs[0]!, b.scalar(alpha)]), b.scalar(beta)]);
  const inside = b.one('And', [b.one('Greater', [z, b.scalar(0)]), b.one('Less', [z, b.scalar(1)])]);
  return [b.one('Where', [inside, b.one('Mul', [ctx.dy[0]!, b.scalar(alpha)]), b.scalar(0)])];
}

export function hardSwishGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const mid = b.one('Add', [b.one('Mul', [x, b.scalar(1 / 3)]), b.scalar(0.5)]);
  const slope = b.one('Where', [b.one('Less', [x, b.scalar(-3)]), b.scalar(0), b.one('Where', [b.one('LessOrEqual', [x, b.scalar(3)]), mid, b.scalar(1)])]);
  return [b.one('Mul', [ctx.dy[0]!, slope])];
}
