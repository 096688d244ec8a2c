/** Erf: dy * 2 / sqrt(pi) * exp(-x^2). */
import type { GradientContext } from './gradient-types.js';

export function erfGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const gauss = b.one('Exp', [b.one('Neg', [b.one('Mul', [x, x])])]);
  return [b.one('Mul', [ctx.dy[0]!, b.one('Mul', [gauss, b.scalar(2 / Math.sqrt(Math.PI))])])];
}
