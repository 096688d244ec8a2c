/** Slice with unit steps: the gradient is the output gradient padded back with zeros to the input's shape. */
import { resolveSlice } from '../../import/ops/slice.js';
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function sliceGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const dims = ctx.shape(x);
  const constant = (i: number) => {
    const v = ctx.constantInts(node.inputs[i]);
    return v ? { dtype: 'int64' as const, dims: [v.length], data: BigInt64Array.from(v.map(BigInt)) } : undefined;
  };
  // Bounds computed from shapes at run time (ShuffleNet's channel split) are not known while the graph is built.
  if (node.inputs.slice(1).some((name) => name && !ctx.constantInts(name))) throw new UnsupportedForTraining(`${ctx.where}: Slice bounds computed at run time`);
  const r = resolveSlice(node, dims, constant, ctx.where);
  if (r.step.some((s) => s !== 1)) throw new UnsupportedForTraining(`${ctx.where}: Slice with a step other than 1`);
  const batchSliced = ctx.batchDependent(x) && (r.begin[0] !== 0 || r.end[0] !== dims[0]);
  if (batchSliced) throw new UnsupportedForTraining(`${ctx.where}: Slice along the batch axis`);
  const before = r.begin.map((v, i) => (i === 0 ? 0 : v));
  const after = r.end.map((v, i) => (i === 0 ? 0 : dims[i]! - v));
  return [b.one('Pad', [ctx.dy[0]!, b.ints([...before, ...after])], { mode: 'constant' }), ...node.inputs.slice(1).map(() => undefined)];
}
