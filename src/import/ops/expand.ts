/** Expand: broadcasts the input against a shape, in both directions as ONNX (and NumPy) do. */
import * as tf from '../../tf.js';
import { nchw, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

export function expand(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const target = ctx.ints(1);
  if (!target) throw new Error(`${ctx.where}: needs a shape`);
  const n = Math.max(x.rank, target.length);
  const out = Array.from({ length: n }, (_, i) => {
    const a = x.shape[i - n + x.rank] ?? 1, b = target[i - n + target.length] ?? 1;
    if (a !== b && a !== 1 && b !== 1) throw new Error(`${ctx.where}: cannot expand [${x.shape}] to [${target}]`);
    return Math.max(a, b);
  });
  const lifted = x.rank < n ? x.reshape([...Array(n - x.rank).fill(1), ...x.shape]) : x;
  return [plain(tf.broadcastTo(lifted, out))];
}
