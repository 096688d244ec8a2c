/** GlobalAveragePool, AveragePool (count_include_pad, ceil_mode) and MaxPool with ONNX padding semantics. */
import * as tf from '../../tf.js';
import { resolvePads } from './conv.js';
import { nhwc, spatial } from './layout.js';
import type { OpContext, Value } from './op-types.js';

export function globalAveragePool(ctx: OpContext): Value[] {
  const x = nhwc(ctx.input(0), ctx.where);
  return [spatial(tf.mean(x, [1, 2], true))];
}

export function globalMaxPool(ctx: OpContext): Value[] {
  const x = nhwc(ctx.input(0), ctx.where);
  return [spatial(tf.max(x, [1, 2], true))];
}

interface PoolGeometry {
  kernel: [number, number];
  strides: [number, number];
  /** Pads the file asks for: [top, left, bottom, right]. */
  pads: [number, number, number, number];
  /** Extra bottom/right rows that ceil_mode adds (never counted as padding). */
  extra: [number, number];
}

function geometry(ctx: OpContext, x: tf.Tensor4D): PoolGeometry {
  const k = ctx.node.attrs.ints('kernel_shape', undefined);
  if (!k || k.length !== 2 || k.some((v) => v < 1)) throw new Error(`${ctx.where}: needs a 2-D kernel_shape`);
  const s = ctx.node.attrs.ints('strides', [1, 1])!;
  const d = ctx.node.attrs.ints('dilations', [1, 1])!;
  if (d.some((v) => v !== 1)) throw new Error(`${ctx.where}: dilated pooling is not supported`);
  const pads = resolvePads(ctx, [x.shape[1], x.shape[2]], k, s, [1, 1]);
  const ceil = ctx.node.attrs.int('ceil_mode', 0) === 1;
  const extra: [number, number] = [0, 0];
  for (let i = 0; i < 2; i++) {
    const size = x.shape[1 + i]! + pads[i]! + pads[i + 2]!;
    if (size < k[i]!) throw new Error(`${ctx.where}: kernel larger than the padded input`);
    if (ceil) {
      let out = Math.ceil((size - k[i]!) / s[i]!) + 1;
      // PyTorch/ONNX: the last window must start inside the input or the begin padding.
      if ((out - 1) * s[i]! >= x.shape[1 + i]! + pads[i]!) out--;
      extra[i] = Math.max(0, (out - 1) * s[i]! + k[i]! - size);
    }
  }
  return { kernel: [k[0]!, k[1]!], strides: [s[0]!, s[1]!], pads, extra };
}

/** The file's pads plus the ceil_mode overhang, filled with `value`. */
function padSpatial(x: tf.Tensor4D, g: PoolGeometry, value: number): tf.Tensor4D {
  const [t, l, b, r] = g.pads;
  return tf.pad(x, [[0, 0], [t, b + g.extra[0]], [l, r + g.extra[1]], [0, 0]], value);
}

export function maxPool(ctx: OpContext): Value[] {
  const x = nhwc(ctx.input(0), ctx.where);
  if (ctx.node.outputs.length > 1 && ctx.node.outputs[1]) throw new Error(`${ctx.where}: the Indices output is not supported`);
  const g = geometry(ctx, x);
  // Padding never wins a max: pad with -Infinity, then pool without padding.
  const p = padSpatial(x, g, -Infinity);
  if (!ctx.training || tf.getBackend() !== 'wasm') return [spatial(tf.maxPool(p, g.kernel, g.strides, 'valid'))];
  // tfjs-backend-wasm's MaxPoolGrad sends a window's gradient to its first element when every value in it
  // is negative ([-3, -1, -2, -4] gives [1, 0, 0, 0]); training on wasm pools the input shifted by a
  // constant to > 0 (same arg-max positions, a rounding-level change of the values) and shifts back. Other
  // backends are right and skip the shift and its synchronous read of min(x).
  const shift = 1 - tf.min(x).dataSync()[0]!;
  if (!(shift > 0) || !Number.isFinite(shift)) return [spatial(tf.maxPool(p, g.kernel, g.strides, 'valid'))];
  return [spatial(tf.sub(tf.maxPool(tf.add(p, shift) as tf.Tensor4D, g.kernel, g.strides, 'valid'), shift))];
}

export function averagePool(ctx: OpContext): Value[] {
  const x = nhwc(ctx.input(0), ctx.where);
  const g = geometry(ctx, x);
  const includePad = ctx.node.attrs.int('count_include_pad', 0) === 1;
  const area = g.kernel[0] * g.kernel[1];
  const noPad = g.pads.every((v) => v === 0) && g.extra.every((v) => v === 0);
  if (noPad) return [spatial(tf.avgPool(x, g.kernel, g.strides, 'valid'))];
  // Sum over each window, divided by the number of elements that count (input, plus the file's pads
  // when count_include_pad; the ceil_mode overhang never counts).
  const sums = tf.mul(tf.avgPool(padSpatial(x, g, 0), g.kernel, g.strides, 'valid'), area);
  const [t, l, b, r] = g.pads;
  const h = x.shape[1], w = x.shape[2];
  const ones = tf.ones([1, h, w, 1]) as tf.Tensor4D;
  const counted = tf.pad(ones, [[0, 0], [t, b], [l, r], [0, 0]], includePad ? 1 : 0);
  const mask = tf.pad(counted, [[0, 0], [0, g.extra[0]], [0, g.extra[1]], [0, 0]], 0) as tf.Tensor4D;
  const counts = tf.mul(tf.avgPool(mask, g.kernel, g.strides, 'valid'), area);
  return [spatial(tf.div(sums, counts))];
}
