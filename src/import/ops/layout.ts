/** NCHW (ONNX) <-> NHWC (tfjs) conversions for the values flowing through the interpreter. */
import * as tf from '../../tf.js';
import type { Value } from './op-types.js';

export function nchw(v: Value): tf.Tensor {
  return v.nhwc ? tf.transpose(v.t, [0, 3, 1, 2]) : v.t;
}

export function nhwc(v: Value, where: string): tf.Tensor4D {
  if (v.nhwc) return v.t as tf.Tensor4D;
  if (v.t.rank !== 4) throw new Error(`${where}: expects a 4-D (N,C,H,W) input, got shape [${v.t.shape.join(',')}]`);
  return tf.transpose(v.t, [0, 2, 3, 1]) as tf.Tensor4D;
}

/** ONNX shape (NCHW order) of a value. */
export function onnxShape(v: Value): number[] {
  const s = v.t.shape;
  return v.nhwc ? [s[0]!, s[3]!, s[1]!, s[2]!] : [...s];
}

/** Maps an NCHW axis to its position in NHWC storage. */
export const NCHW_TO_NHWC_AXIS = [0, 3, 1, 2];

export const plain = (t: tf.Tensor): Value => ({ t, nhwc: false });
export const spatial = (t: tf.Tensor): Value => ({ t, nhwc: true });

export function normAxis(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${where}: axis ${axis} out of range for rank ${rank}`);
  return a;
}
