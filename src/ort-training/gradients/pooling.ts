/**
 * GlobalAveragePool spreads dy / (H*W) over the window; MaxPool routes dy to the arg-max positions, which
 * the forward MaxPool reports as its second (Indices) output, by a scatter-add (overlapping windows can
 * pick the same input twice).
 */
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function globalAveragePoolGradient(ctx: GradientContext): (string | undefined)[] {
  const { b } = ctx;
  const x = ctx.node.inputs[0]!;
  const s = ctx.shape(x);
  if (s.length !== 4) throw new UnsupportedForTraining(`${ctx.where}: GlobalAveragePool on rank ${s.length}`);
  const scaled = b.one('Mul', [ctx.dy[0]!, b.scalar(1 / (s[2]! * s[3]!))]);
  return [b.one('Expand', [scaled, b.one('Shape', [x])])];
}

/** `indices`: the forward MaxPool's Indices output (flat positions in the whole input tensor). */
export function maxPoolGradient(ctx: GradientContext, indices: string): (string | undefined)[] {
  const { b } = ctx;
  const x = ctx.node.inputs[0]!;
  const shapeX = b.one('Shape', [x]);
  const zeros = b.one('ConstantOfShape', [b.one('Reshape', [b.one('Size', [x]), b.ints([1])])], {});
  const flatIdx = b.one('Reshape', [indices, b.ints([-1])]);
  const flatDy = b.one('Reshape', [ctx.dy[0]!, b.ints([-1])]);
  const scattered = b.one('ScatterElements', [zeros, flatIdx, flatDy], { axis: 0, reduction: 'add' });
  return [b.one('Reshape', [scattered, shapeX])];
}
