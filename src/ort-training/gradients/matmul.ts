/**
 * MatMul of rank 2 or more with NumPy broadcasting of the leading axes: dA = dY B^T and dB = A^T dY, each
 * summed over the axes its operand was broadcast along. A Linear layer on a channels-last map (ConvNeXt,
 * transformers) is [N, H, W, C] x [C, K]: its weight gradient is one Gemm over the flattened rows.
 */
import { unbroadcast } from './elementwise.js';
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function matMulGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const [a, w] = node.inputs as [string, string];
  const as = ctx.shape(a), ws = ctx.shape(w), ys = ctx.shape(node.outputs[0]!);
  if (as.length < 2 || ws.length < 2) throw new UnsupportedForTraining(`${ctx.where}: MatMul with a vector operand`);
  const dy = ctx.dy[0]!;
  const swapLast = (name: string, rank: number) => {
    const perm = [...Array(rank).keys()];
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
    return b.one('Transpose', [name], { perm });
  };
  if (as.length === 2 && ws.length === 2) {
    return [
      ctx.needs(0) ? b.one('Gemm', [dy, w], { transB: 1 }) : undefined,
      ctx.needs(1) ? b.one('Gemm', [a, dy], { transA: 1 }) : undefined,
    ];
  }
  const lead = ys.slice(0, -2);
  let da: string | undefined, dw: string | undefined;
  if (ctx.needs(0)) {
    const full = b.one('MatMul', [dy, ws.length === 2 ? b.one('Transpose', [w], { perm: [1, 0] }) : swapLast(w, ws.length)]);
    da = unbroadcast(b, full, [...lead, ...as.slice(-2)], as, ctx.batchDependent(a));
  }
  if (ctx.needs(1)) {
    if (ws.length === 2) {
      // Every leading axis of A is a row of the same weight: one Gemm over the flattened rows.
      const rows = (name: string, cols: number) => b.one('Reshape', [name, b.ints([-1, cols])]);
      dw = b.one('Gemm', [rows(a, as[as.length - 1]!), rows(dy, ys[ys.length - 1]!)], { transA: 1 });
    } else {
      const full = b.one('MatMul', [swapLast(a, as.length), dy]);
      dw = unbroadcast(b, full, [...lead, ...ws.slice(-2)], ws, ctx.batchDependent(w));
    }
  }
  return [da, dw];
}
