/**
 * Shape plumbing: Shape, Gather, Unsqueeze, Squeeze, Concat, Reshape, Flatten, Transpose, Cast, Identity,
 * Constant. Integer tensors (shapes, indices) are int32 in tfjs. Everything that depends on the
 * order of dimensions works on ONNX's NCHW view of its input.
 */
import * as tf from '../../tf.js';
import { DataType } from '../../onnx/onnx-schema.js';
import type { TensorValue } from '../tensor-data.js';
import { NCHW_TO_NHWC_AXIS, nchw, normAxis, onnxShape, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

/** A decoded ONNX tensor as a tfjs tensor (int64 narrowed to int32, after a range check). */
export function tensorFromValue(v: TensorValue, where: string): tf.Tensor {
  switch (v.dtype) {
    case 'float32': return tf.tensor(v.data as Float32Array, v.dims, 'float32');
    case 'float64': return tf.tensor(Float32Array.from(v.data as Float64Array), v.dims, 'float32');
    case 'int64': {
      const src = v.data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const x = src[i]!;
        // Values beyond int32 are clamped: ONNX uses the INT64 extremes as "to the end" markers.
        if (x > 2147483647n) out[i] = 2147483647;
        else if (x < -2147483648n) out[i] = -2147483648;
        else out[i] = Number(x);
      }
      return tf.tensor(out, v.dims, 'int32');
    }
    case 'int32': case 'int8': case 'uint8': return tf.tensor(Int32Array.from(v.data as Int32Array), v.dims, 'int32');
    case 'bool': return tf.tensor(Int32Array.from(v.data as Uint8Array), v.dims, 'bool');
    case 'float16': throw new Error(`${where}: float16 tensors are not supported`);
  }
}

export function shape(ctx: OpContext): Value[] {
  const s = onnxShape(ctx.input(0));
  let start = ctx.node.attrs.int('start', 0), end = ctx.node.attrs.int('end', s.length);
  if (start < 0) start += s.length;
  if (end < 0) end += s.length;
  return [plain(tf.tensor1d(s.slice(Math.max(0, start), Math.min(s.length, end)), 'int32'))];
}

export function gather(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const idx = ctx.input(1).t;
  const axis = normAxis(ctx.node.attrs.int('axis', 0), x.rank, ctx.where);
  const dim = x.shape[axis]!;
  const fixed = tf.where(tf.less(idx, 0), tf.add(idx, tf.scalar(dim, 'int32')), idx);
  return [plain(tf.gather(x, tf.cast(fixed, 'int32'), axis))];
}

function axesOf(ctx: OpContext, inputIndex: number): number[] | undefined {
  return ctx.node.attrs.ints('axes', undefined) ?? ctx.ints(inputIndex);
}

export function unsqueeze(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const axes = axesOf(ctx, 1);
  if (!axes) throw new Error(`${ctx.where}: needs axes`);
  const rank = x.rank + axes.length;
  const norm = axes.map((a) => normAxis(a, rank, ctx.where)).sort((a, b) => a - b);
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : x.shape[j++]!);
  return [plain(x.reshape(out))];
}

export function squeeze(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const axes = axesOf(ctx, 1);
  const drop = axes ? axes.map((a) => normAxis(a, x.rank, ctx.where)) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  for (const a of drop) if (x.shape[a] !== 1) throw new Error(`${ctx.where}: cannot squeeze axis ${a} of size ${x.shape[a]}`);
  return [plain(x.reshape(x.shape.filter((_, i) => !drop.includes(i))))];
}

export function concat(ctx: OpContext): Value[] {
  const vs = ctx.node.inputs.map((_, i) => ctx.input(i));
  const rank = vs[0]!.t.rank;
  const axis = normAxis(ctx.node.attrs.int('axis', 0), rank, ctx.where);
  if (vs.every((v) => v.nhwc)) return [{ t: tf.concat(vs.map((v) => v.t), NCHW_TO_NHWC_AXIS[axis]), nhwc: true }];
  const ts = vs.map(nchw);
  const dtype = ts.some((t) => t.dtype === 'float32') ? 'float32' : ts[0]!.dtype;
  return [plain(tf.concat(ts.map((t) => (t.dtype === dtype ? t : tf.cast(t, dtype))), axis))];
}

export function reshape(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const target = ctx.ints(1);
  if (!target) throw new Error(`${ctx.where}: needs a shape`);
  const allowZero = ctx.node.attrs.int('allowzero', 0) === 1;
  const out = target.map((d, i) => (d === 0 && !allowZero ? x.shape[i]! : d));
  if (out.filter((d) => d === -1).length > 1 || out.some((d) => d < -1)) throw new Error(`${ctx.where}: invalid shape [${target}]`);
  const known = out.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  if (out.includes(-1) ? known === 0 || x.size % known !== 0 : known !== x.size) {
    throw new Error(`${ctx.where}: cannot reshape [${x.shape}] to [${target}]`);
  }
  return [plain(x.reshape(out))];
}

export function flatten(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const axis = ctx.node.attrs.int('axis', 1);
  const a = axis < 0 ? axis + x.rank : axis;
  if (a < 0 || a > x.rank) throw new Error(`${ctx.where}: axis ${axis} out of range`);
  const rows = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
  return [plain(x.reshape([rows, x.size / Math.max(1, rows)]))];
}

export function transpose(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const perm = ctx.node.attrs.ints('perm', undefined) ?? [...Array(x.rank).keys()].reverse();
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) throw new Error(`${ctx.where}: invalid perm [${perm}]`);
  return [plain(tf.transpose(x, perm))];
}

export function cast(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  const to = ctx.node.attrs.int('to', DataType.FLOAT);
  const floats: number[] = [DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16];
  const dtype = to === DataType.BOOL ? 'bool' : floats.includes(to) ? 'float32' : 'int32';
  return [{ t: v.t.dtype === dtype ? v.t : tf.cast(v.t, dtype), nhwc: v.nhwc }];
}

export function identity(ctx: OpContext): Value[] {
  return [ctx.input(0)];
}

export function constant(ctx: OpContext): Value[] {
  const value = ctx.constant(-1);
  if (!value) throw new Error(`${ctx.where}: unsupported Constant form`);
  return [plain(tensorFromValue(value, ctx.where))];
}
