/**
 * LayerNormalization (opset 17; PyTorch exports nn.LayerNorm so from opset 17): normalises over the axes
 * from `axis` to the last, then scales and shifts. Mean and InvStdDev are produced when asked for.
 */
import * as tf from '../../tf.js';
import { nchw, normAxis, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

export function layerNormalization(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const axis = normAxis(ctx.node.attrs.int('axis', -1), x.rank, ctx.where);
  const eps = ctx.node.attrs.float('epsilon', 1e-5);
  const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
  const scale = ctx.param(1) ?? nchw(ctx.input(1));
  const bias = ctx.node.inputs[2] ? (ctx.param(2) ?? nchw(ctx.input(2))) : undefined;
  const mean = tf.mean(x, axes, true);
  const centred = tf.sub(x, mean);
  const inv = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axes, true), eps));
  let y = tf.mul(tf.mul(centred, inv), scale);
  if (bias) y = tf.add(y, bias);
  return [plain(y), plain(mean), plain(inv)];
}
