/** Relu, LeakyRelu, Clip, Sigmoid, Softmax, LogSoftmax. */
import * as tf from '../../tf.js';
import { nchw, normAxis, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

const keep = (v: Value, t: tf.Tensor): Value => ({ t, nhwc: v.nhwc });

export function relu(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [keep(v, tf.relu(v.t))];
}

export function leakyRelu(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [keep(v, tf.leakyRelu(v.t, ctx.node.attrs.float('alpha', 0.01)))];
}

export function sigmoid(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [keep(v, tf.sigmoid(v.t))];
}

export function clip(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  let lo = -Infinity, hi = Infinity;
  if (ctx.node.attrs.has('min') || ctx.node.attrs.has('max')) {
    lo = ctx.node.attrs.float('min', -Infinity);
    hi = ctx.node.attrs.float('max', Infinity);
  }
  const cmin = ctx.constant(1), cmax = ctx.constant(2);
  if (ctx.node.inputs[1] && !cmin) throw new Error(`${ctx.where}: min must be a constant`);
  if (ctx.node.inputs[2] && !cmax) throw new Error(`${ctx.where}: max must be a constant`);
  if (cmin) lo = Number(cmin.data[0]);
  if (cmax) hi = Number(cmax.data[0]);
  // tf.clipByValue has a gradient of 1 inside the range, 0 outside: like torch.clamp.
  const t = lo === 0 && hi === Infinity ? tf.relu(v.t) : tf.maximum(tf.minimum(v.t, hi), lo);
  return [keep(v, t)];
}

function softmaxLike(ctx: OpContext, log: boolean): Value[] {
  const x = nchw(ctx.input(0));
  if (ctx.opset < 13) {
    // Before opset 13: softmax over the flattened dims from `axis` on (default axis 1).
    const a = normAxis(ctx.node.attrs.int('axis', 1), x.rank, ctx.where);
    const rows = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
    const flat = x.reshape([rows, -1]);
    return [plain((log ? tf.logSoftmax(flat) : tf.softmax(flat)).reshape(x.shape))];
  }
  const axis = normAxis(ctx.node.attrs.int('axis', -1), x.rank, ctx.where);
  if (axis === x.rank - 1) return [plain(log ? tf.logSoftmax(x) : tf.softmax(x))];
  const perm = [...Array(x.rank).keys()];
  perm[axis] = x.rank - 1;
  perm[x.rank - 1] = axis;
  const moved = tf.transpose(x, perm);
  return [plain(tf.transpose(log ? tf.logSoftmax(moved) : tf.softmax(moved), perm))];
}

export const softmax = (ctx: OpContext) => softmaxLike(ctx, false);
export const logSoftmax = (ctx: OpContext) => softmaxLike(ctx, true);
