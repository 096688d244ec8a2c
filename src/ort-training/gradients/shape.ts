/** Reshape and Flatten move no values: the gradient takes the input's shape back. */
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function reshapeGradient(ctx: GradientContext): (string | undefined)[] {
  const { b } = ctx;
  const x = ctx.node.inputs[0]!;
  return [b.one('Reshape', [ctx.dy[0]!, b.one('Shape', [x])])];
}

/** Squeeze, Unsqueeze, Dropout (inference exports) move no values either. */
export const squeezeGradient = reshapeGradient;

export function transposeGradient(ctx: GradientContext): (string | undefined)[] {
  const rank = ctx.shape(ctx.node.inputs[0]!).length;
  const perm = ctx.node.attrs.ints('perm', undefined) ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return [ctx.b.one('Transpose', [ctx.dy[0]!], { perm: inverse })];
}

/** Concat: each input takes its slice of the gradient along the axis (not the batch axis). */
export function concatGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const rank = ctx.shape(node.outputs[0]!).length;
  const axis = (node.attrs.int('axis', 0) + rank) % rank;
  if (axis === 0) throw new UnsupportedForTraining(`${ctx.where}: Concat along the batch axis`);
  let start = 0;
  return node.inputs.map((name, i) => {
    const size = ctx.shape(name)[axis]!;
    const g = ctx.needs(i) ? b.one('Slice', [ctx.dy[0]!, b.ints([start]), b.ints([start + size]), b.ints([axis])]) : undefined;
    start += size;
    return g;
  });
}

/** Constant-mode Pad with non-negative pads: the gradient is the unpadded window of dy. */
export function padGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const mode = node.attrs.string('mode', 'constant');
  const x = node.inputs[0]!;
  const rank = ctx.shape(x).length;
  const pads = node.attrs.ints('pads', undefined) ?? ctx.constantInts(node.inputs[1]);
  if (mode !== 'constant' || !pads || pads.length !== 2 * rank || pads.some((p) => p < 0) || (node.inputs[3] ?? '') !== '') {
    throw new UnsupportedForTraining(`${ctx.where}: Pad other than constant mode with non-negative pads on all axes`);
  }
  if (pads[0] !== 0 || pads[rank] !== 0) throw new UnsupportedForTraining(`${ctx.where}: Pad on the batch axis`);
  const xs = ctx.shape(x);
  const axes = Array.from({ length: rank - 1 }, (_, i) => i + 1);
  return [b.one('Slice', [ctx.dy[0]!, b.ints(axes.map((a) => pads[a]!)), b.ints(axes.map((a) => pads[a]! + xs[a]!)), b.ints(axes)])];
}
