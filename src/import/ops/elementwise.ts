/** Add, Sub, Mul, Div with ONNX (NCHW, numpy-style) broadcasting, whatever layout each operand is stored in. */
import * as tf from '../../tf.js';
import { nchw } from './layout.js';
import type { OpContext, Value } from './op-types.js';

/** Brings a non-NHWC operand into NHWC broadcasting order (ONNX right-aligns shapes against N,C,H,W). */
function toNhwcBroadcast(t: tf.Tensor): tf.Tensor {
  if (t.rank === 0 || t.rank === 1 && t.shape[0] === 1) return t;
  if (t.rank > 4) throw new Error('operand of rank above 4 against a 4-D map');
  const s4 = [...Array(4 - t.rank).fill(1), ...t.shape] as number[];
  return tf.transpose(t.reshape(s4), [0, 2, 3, 1]);
}

export function binary(fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) {
  return (ctx: OpContext): Value[] => {
    const a = ctx.input(0), b = ctx.input(1);
    if (a.nhwc && b.nhwc) return [{ t: fn(a.t, b.t), nhwc: true }];
    if (a.nhwc && b.t.rank <= 4) return [{ t: fn(a.t, toNhwcBroadcast(b.t)), nhwc: true }];
    if (b.nhwc && a.t.rank <= 4) return [{ t: fn(toNhwcBroadcast(a.t), b.t), nhwc: true }];
    return [{ t: fn(nchw(a), nchw(b)), nhwc: false }];
  };
}

export function sameDtype(fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) {
  return (a: tf.Tensor, b: tf.Tensor) => fn(a, b.dtype === a.dtype ? b : tf.cast(b, a.dtype));
}

export const add = binary(sameDtype(tf.add));
export const sub = binary(sameDtype(tf.sub));
export const mul = binary(sameDtype(tf.mul));
// ONNX integer division truncates; shape arithmetic only ever divides non-negative values.
export const div = binary(sameDtype((a, b) => (a.dtype === 'int32' ? tf.floorDiv(a, b) : tf.div(a, b))));
