/** Gradients of Relu, Add (with broadcasting) and Identity. */
import type { GraphBuilder } from '../graph-builder.js';
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function reluGradient(ctx: GradientContext): (string | undefined)[] {
  // dy times the 0/1 mask of a positive output: onnxruntime runs Greater, Cast and Mul about twice as fast
  // as Where (bench/README.md). Finite gradients only: inf * 0 is NaN where Where gave 0.
  const { b } = ctx;
  const mask = b.one('Cast', [b.one('Greater', [ctx.node.outputs[0]!, b.scalar(0)])], { to: 1 });
  return [b.one('Mul', [ctx.dy[0]!, mask])];
}

/**
 * Sums a gradient of the output's shape down to an input's shape (undoing broadcasting). Shapes are known
 * for a batch of one, so for a tensor that does not depend on the batch the output's axis 0 counts as broadcast.
 */
export function unbroadcast(b: GraphBuilder, dy: string, outShape: number[], inShape: number[], inBatchDependent: boolean): string {
  const lead = outShape.length - inShape.length;
  if (lead < 0) throw new UnsupportedForTraining('broadcast to a smaller rank');
  const axes: number[] = [];
  outShape.forEach((d, i) => {
    const k = i - lead;
    const inDim = k >= 0 ? inShape[k]! : undefined;
    const outIsBatch = i === 0 && !inBatchDependent;
    if (inDim === undefined || (inDim === 1 && (d !== 1 || outIsBatch))) axes.push(i);
  });
  if (axes.length === 0) return dy;
  const summed = b.reduceSum(dy, axes, true);
  // A batch-dependent input keeps its (run-time) batch axis: 0 copies it.
  const target = inBatchDependent && lead === 0 && inShape.length > 0 ? [0, ...inShape.slice(1)] : inShape;
  return b.one('Reshape', [summed, b.ints(target)]);
}

export function addGradient(ctx: GradientContext): (string | undefined)[] {
  const out = ctx.shape(ctx.node.outputs[0]!);
  return ctx.node.inputs.map((name, i) => {
    if (!ctx.needs(i)) return undefined;
    const dep = ctx.batchDependent(name);
    return unbroadcast(ctx.b, ctx.dy[0]!, out, ctx.shape(name), dep);
  });
}

export function identityGradient(ctx: GradientContext): (string | undefined)[] {
  return [ctx.dy[0]];
}
