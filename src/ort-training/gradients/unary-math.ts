/** Gradients of Neg, Sqrt, Exp, Abs and Pow (constant exponent), as PyTorch defines them (Abs: 0 at 0). */
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function negGradient(ctx: GradientContext): (string | undefined)[] {
  return [ctx.b.one('Neg', [ctx.dy[0]!])];
}

export function sqrtGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  return [b.one('Div', [b.one('Mul', [ctx.dy[0]!, b.scalar(0.5)]), node.outputs[0]!])];
}

export function absGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  return [b.one('Mul', [ctx.dy[0]!, b.one('Sign', [node.inputs[0]!])])];
}

export function powGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const [x, e] = node.inputs as [string, string];
  if (ctx.needs(1)) throw new UnsupportedForTraining(`${ctx.where}: gradient with respect to an exponent`);
  const ef = b.one('Cast', [e], { to: 1 });
  return [b.one('Mul', [ctx.dy[0]!, b.one('Mul', [ef, b.one('Pow', [x, b.one('Sub', [ef, b.scalar(1)])])])]), undefined];
}

export function expGradient(ctx: GradientContext): (string | undefined)[] {
  return [ctx.b.one('Mul', [ctx.dy[0]!, ctx.node.outputs[0]!])];
}

export function logGradient(ctx: GradientContext): (string | undefined)[] {
  return [ctx.b.one('Div', [ctx.dy[0]!, ctx.node.inputs[0]!])];
}
