/** Tanh: dy * (1 - y^2); Softplus: dy * sigmoid(x). */
import type { GradientContext } from './gradient-types.js';

export function tanhGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const y = node.outputs[0]!;
  return [b.one('Mul', [ctx.dy[0]!, b.one('Sub', [b.scalar(1), b.one('Mul', [y, y])])])];
}

export function softplusGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  return [b.one('Mul', [ctx.dy[0]!, b.one('Sigmoid', [node.inputs[0]!])])];
}
