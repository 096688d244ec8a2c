/** Gradients of ReduceSum, ReduceMean and ReduceMax over any axes, the batch axis included (its size is known at run time only). */
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

function reducedAxes(ctx: GradientContext): number[] {
  const { node } = ctx;
  const rank = ctx.shape(node.inputs[0]!).length;
  const given = node.attrs.ints('axes', undefined) ?? (node.inputs[1] ? ctx.constantInts(node.inputs[1]) : undefined);
  if (node.inputs[1] && !given) throw new UnsupportedForTraining(`${ctx.where}: axes computed at run time`);
  if (!given || given.length === 0) {
    if (node.attrs.int('noop_with_empty_axes', 0)) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return given.map((a) => (a + rank) % rank);
}

/** dy broadcast back over the reduced axes to x's shape. */
function spread(ctx: GradientContext, axes: number[], dy: string): string {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const xs = ctx.shape(x);
  // Reshape dy to x's rank with 1 on the reduced axes; the batch axis is copied (0) when kept.
  const kept = xs.map((d, i) => (axes.includes(i) ? 1 : i === 0 && ctx.batchDependent(x) ? 0 : d));
  return b.one('Expand', [b.one('Reshape', [dy, b.ints(kept)]), b.one('Shape', [x])]);
}

export function reduceSumGradient(ctx: GradientContext): (string | undefined)[] {
  return [spread(ctx, reducedAxes(ctx), ctx.dy[0]!)];
}

export function reduceMeanGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const xs = ctx.shape(x);
  const axes = reducedAxes(ctx);
  if (axes.includes(0) && ctx.batchDependent(x)) {
    // Elements averaged: size(x) / size(y), from the run-time shapes.
    const size = (t: string) => b.one('Cast', [b.one('Size', [t])], { to: 1 });
    return [spread(ctx, axes, b.one('Div', [ctx.dy[0]!, b.one('Div', [size(x), size(node.outputs[0]!)])]))];
  }
  const count = axes.reduce((acc, a) => acc * xs[a]!, 1);
  return [spread(ctx, axes, b.one('Mul', [ctx.dy[0]!, b.scalar(1 / count)]))];
}

/** ReduceMax: dy to the maxima, shared evenly among ties (torch.amax). */
export function reduceMaxGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const axes = reducedAxes(ctx);
  const y = spread(ctx, axes, node.outputs[0]!);
  const mask = b.one('Cast', [b.one('Equal', [x, y])], { to: 1 });
  const share = b.one('Div', [mask, b.reduceSum(mask, axes, true)]);
  return [b.one('Mul', [share, spread(ctx, axes, ctx.dy[0]!)])];
}
