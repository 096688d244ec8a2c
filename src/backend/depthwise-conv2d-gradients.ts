/**
 * A depthwise 2-D convolution (groups = input channels, any channel multiplier) with gradients built from
 * forward ops. tfjs registers DepthwiseConv2dNative's gradient through backprop kernels that the wasm
 * backend lacks; splitting into one conv per group instead costs one kernel launch per channel (768 on
 * ConvNeXt's last stage).
 * - input gradient: a depthwise conv of the stride-spread, padded dy with the flipped kernel, summed over
 *   the multiplier;
 * - filter gradient: per kernel tap, one strided window of the padded input times dy, summed over the
 *   batch and the positions.
 */
import * as tf from '../tf.js';
import { spreadSpatial, type Conv2dParams } from './conv2d-gradients.js';

function forward(x: tf.Tensor4D, w: tf.Tensor4D, p: Conv2dParams): tf.Tensor4D {
  const [t, l, b, r] = p.pads;
  const padded = t || l || b || r ? tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]) : x;
  return tf.depthwiseConv2d(padded, w, p.strides, 'valid', 'NHWC', p.dilations);
}

function inputGrad(dy: tf.Tensor4D, w: tf.Tensor4D, inShape: number[], p: Conv2dParams): tf.Tensor4D {
  const [kh, kw, c, m] = w.shape;
  const [dh, dw] = p.dilations;
  const keh = (kh - 1) * dh + 1, kew = (kw - 1) * dw + 1;
  const up = spreadSpatial(dy, p.strides[0], p.strides[1]);
  const top = keh - 1 - p.pads[0], left = kew - 1 - p.pads[1];
  const bottom = inShape[1]! - up.shape[1] - top + keh - 1, right = inShape[2]! - up.shape[2] - left + kew - 1;
  // Negative amounts crop (a stride that left input rows unread).
  const cropped = up.slice([0, Math.max(0, -top), Math.max(0, -left), 0],
    [up.shape[0], up.shape[1] - Math.max(0, -top) - Math.max(0, -bottom), up.shape[2] - Math.max(0, -left) - Math.max(0, -right), up.shape[3]]);
  const padded = tf.pad(cropped, [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]]);
  const flipped = tf.reverse(w, [0, 1]).reshape([kh, kw, c * m, 1]) as tf.Tensor4D;
  const g = tf.depthwiseConv2d(padded, flipped, 1, 'valid', 'NHWC', p.dilations); // [N, H, W, C*m]
  return (m === 1 ? g : g.reshape([g.shape[0], g.shape[1], g.shape[2], c, m]).sum(4)) as tf.Tensor4D;
}

function filterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, wShape: number[], p: Conv2dParams): tf.Tensor4D {
  const [kh, kw, c, m] = wShape as [number, number, number, number];
  const [t, l, b, r] = p.pads;
  const xp = tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]);
  const [n, ho, wo] = dy.shape;
  const dyM = dy.reshape([n, ho, wo, c, m]);
  const taps: tf.Tensor[] = [];
  for (let y = 0; y < kh; y++) {
    for (let z = 0; z < kw; z++) {
      const y0 = y * p.dilations[0], z0 = z * p.dilations[1];
      const win = tf.stridedSlice(xp, [0, y0, z0, 0], [n, y0 + (ho - 1) * p.strides[0] + 1, z0 + (wo - 1) * p.strides[1] + 1, c], [1, p.strides[0], p.strides[1], 1]);
      taps.push(tf.mul(win.reshape([n, ho, wo, c, 1]), dyM).sum([0, 1, 2])); // [C, m]
    }
  }
  return tf.stack(taps).reshape([kh, kw, c, m]) as tf.Tensor4D;
}

/** y = depthwiseConv2d(x, w): x [N,H,W,C], w [KH,KW,C,m] (output channel c*m + j), explicit pads. */
export function depthwiseConv2dTrainable(x: tf.Tensor4D, w: tf.Tensor4D, p: Conv2dParams): tf.Tensor4D {
  const f = tf.customGradient<[tf.Tensor4D, tf.Tensor4D], tf.Tensor4D>((xi, wi, save) => {
    save([xi, wi]);
    return {
      value: forward(xi, wi, p),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
        return [inputGrad(dy as tf.Tensor4D, sw, sx.shape, p), filterGrad(sx, dy as tf.Tensor4D, sw.shape, p)];
      },
    };
  });
  return f(x, w);
}
