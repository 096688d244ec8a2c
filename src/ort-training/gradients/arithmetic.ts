/** Gradients of Sub, Mul and Div with broadcasting (the sums undo it, see unbroadcast). */
import { unbroadcast } from './elementwise.js';
import type { GradientContext } from './gradient-types.js';

function reduceTo(ctx: GradientContext, g: string, i: number): string {
  const name = ctx.node.inputs[i]!;
  return unbroadcast(ctx.b, g, ctx.shape(ctx.node.outputs[0]!), ctx.shape(name), ctx.batchDependent(name));
}

export function subGradient(ctx: GradientContext): (string | undefined)[] {
  const dy = ctx.dy[0]!;
  return [ctx.needs(0) ? reduceTo(ctx, dy, 0) : undefined, ctx.needs(1) ? reduceTo(ctx, ctx.b.one('Neg', [dy]), 1) : undefined];
}

export function mulGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const [x, y] = node.inputs as [string, string];
  const dy = ctx.dy[0]!;
  return [
    ctx.needs(0) ? reduceTo(ctx, b.one('Mul', [dy, y]), 0) : undefined,
    ctx.needs(1) ? reduceTo(ctx, b.one('Mul', [dy, x]), 1) : undefined,
  ];
}

export function divGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const [, y] = node.inputs as [string, string];
  const dy = ctx.dy[0]!;
  const q = node.outputs[0]!;
  return [
    ctx.needs(0) ? reduceTo(ctx, b.one('Div', [dy, y]), 0) : undefined,
    ctx.needs(1) ? reduceTo(ctx, b.one('Neg', [b.one('Div', [b.one('Mul', [dy, q]), y])]), 1) : undefined,
  ];
}
