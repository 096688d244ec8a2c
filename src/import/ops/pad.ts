/** Pad: constant, reflect and edge modes; pads from the attribute (opset < 11) or the input. */
import * as tf from '../../tf.js';
import { NCHW_TO_NHWC_AXIS, normAxis } from './layout.js';
import type { OpContext, Value } from './op-types.js';

/** Edge (replicate) padding along one axis: the border slice repeated. */
function edgePadAxis(x: tf.Tensor, axis: number, before: number, after: number): tf.Tensor {
  const parts: tf.Tensor[] = [];
  const size = x.shape[axis]!;
  const sliceAt = (i: number) => {
    const begin = x.shape.map((_, k) => (k === axis ? i : 0));
    const len = x.shape.map((d, k) => (k === axis ? 1 : d));
    return tf.slice(x, begin, len);
  };
  const reps = (n: number) => x.shape.map((_, k) => (k === axis ? n : 1));
  if (before > 0) parts.push(tf.tile(sliceAt(0), reps(before)));
  parts.push(x);
  if (after > 0) parts.push(tf.tile(sliceAt(size - 1), reps(after)));
  return parts.length === 1 ? x : tf.concat(parts, axis);
}

export function pad(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  const rank = v.t.rank;
  const mode = ctx.node.attrs.string('mode', 'constant');
  const raw = ctx.node.attrs.ints('pads', undefined) ?? ctx.ints(1);
  if (!raw) throw new Error(`${ctx.where}: needs pads`);
  let value = ctx.node.attrs.float('value', 0);
  const cv = ctx.node.inputs[2] ? ctx.constant(2) : undefined;
  if (ctx.node.inputs[2] && !cv) throw new Error(`${ctx.where}: constant_value must be a constant`);
  if (cv && cv.data.length > 0) value = Number(cv.data[0]);
  // opset 18: pads may cover only the listed axes.
  const axes = ctx.node.inputs[3] ? (ctx.ints(3) ?? []).map((a) => normAxis(a, rank, ctx.where)) : [...Array(rank).keys()];
  if (raw.length !== 2 * axes.length) throw new Error(`${ctx.where}: pads has ${raw.length} values for ${axes.length} axes`);
  if (raw.some((p) => p < 0)) throw new Error(`${ctx.where}: negative pads are not supported`);
  // Paddings per ONNX axis, then mapped to the stored layout.
  const onnxPads: [number, number][] = Array.from({ length: rank }, () => [0, 0]);
  axes.forEach((a, i) => (onnxPads[a] = [raw[i]!, raw[i + axes.length]!]));
  const stored: [number, number][] = Array.from({ length: rank }, () => [0, 0]);
  onnxPads.forEach((p, a) => (stored[v.nhwc ? NCHW_TO_NHWC_AXIS[a]! : a] = p));
  let y: tf.Tensor;
  if (mode === 'constant') y = tf.pad(v.t, stored, value);
  else if (mode === 'reflect') {
    stored.forEach(([b, a], k) => {
      if (b >= v.t.shape[k]! || a >= v.t.shape[k]!) throw new Error(`${ctx.where}: reflect pad larger than the input`);
    });
    y = tf.mirrorPad(v.t, stored, 'reflect');
  } else if (mode === 'edge') {
    y = v.t;
    stored.forEach(([b, a], k) => (y = edgePadAxis(y, k, b, a)));
  } else throw new Error(`${ctx.where}: unsupported pad mode '${mode}'`);
  return [{ t: y, nhwc: v.nhwc }];
}
