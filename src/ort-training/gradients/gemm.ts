/** Gemm (Y = alpha * A' B' + beta * C, A not transposed). */
import { unbroadcast } from './elementwise.js';
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function gemmGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const [a, w, c] = node.inputs as [string, string, string | undefined];
  const alpha = node.attrs.float('alpha', 1), beta = node.attrs.float('beta', 1);
  if (node.attrs.int('transA', 0) !== 0) throw new UnsupportedForTraining(`${ctx.where}: Gemm with transA`);
  const transB = node.attrs.int('transB', 0);
  const dy = ctx.dy[0]!;
  const da = ctx.needs(0) ? b.one('Gemm', [dy, w], { alpha: { float: alpha }, transB: transB ? 0 : 1 }) : undefined;
  const dw = ctx.needs(1)
    ? transB ? b.one('Gemm', [dy, a], { alpha: { float: alpha }, transA: 1 }) : b.one('Gemm', [a, dy], { alpha: { float: alpha }, transA: 1 })
    : undefined;
  let dc: string | undefined;
  if (c && ctx.needs(2)) {
    const g = unbroadcast(b, dy, ctx.shape(node.outputs[0]!), ctx.shape(c), ctx.batchDependent(c));
    dc = beta === 1 ? g : b.one('Mul', [g, b.scalar(beta)]);
  }
  return [da, dw, dc];
}
