/** Where(condition, X, Y) with broadcasting (masked_fill exports to it). */
import * as tf from '../../tf.js';
import { nchw, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

export function where(ctx: OpContext): Value[] {
  const c = nchw(ctx.input(0)), x = nchw(ctx.input(1)), y = nchw(ctx.input(2));
  const cond = c.dtype === 'bool' ? c : tf.cast(c, 'bool');
  // tf.where needs one shape: broadcast all three first (tf.broadcastTo's gradient sums back).
  const rank = Math.max(c.rank, x.rank, y.rank);
  const lift = (t: tf.Tensor) => (t.rank < rank ? t.reshape([...Array(rank - t.rank).fill(1), ...t.shape]) : t);
  const [lc, lx, ly] = [cond, x, y].map(lift) as [tf.Tensor, tf.Tensor, tf.Tensor];
  const shape = Array.from({ length: rank }, (_, i) => Math.max(lc.shape[i]!, lx.shape[i]!, ly.shape[i]!));
  const full = (t: tf.Tensor) => (t.shape.every((d, i) => d === shape[i]) ? t : tf.broadcastTo(t, shape));
  return [plain(tf.where(full(lc), full(lx), full(ly)))];
}
