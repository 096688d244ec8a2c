/**
 * NAD attention maps outside a training graph: for the tfjs engine's tests, the report's figure and
 * NCHW tensors that come out of onnxruntime. All of them evaluate the one definition in loss/attention-map.ts.
 */
import * as tf from '../tf.js';
import { attentionDistance, attentionMap as mapOf } from './loss/attention-map.js';
import { tfjsOps } from './tfjs-tensor-ops.js';

export { attentionExponent, type AttentionKind } from './loss/attention-map.js';

/** Normalised attention maps [N, H*W] of a feature map whose channel axis is `channelAxis`. */
export function attentionMap(f: tf.Tensor, channelAxis: number, p: number): tf.Tensor2D {
  const hw = f.shape.filter((_, i) => i !== 0 && i !== channelAxis).reduce((a, b) => a * b, 1);
  return mapOf(tfjsOps, f, channelAxis, hw, p) as tf.Tensor2D;
}

/** Mean squared error between two normalised attention maps [N, H*W]. */
export function attentionLoss(student: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  return attentionDistance(tfjsOps, student, teacher) as tf.Scalar;
}

/** The normalised maps of an NCHW tensor given as a flat array: [n, h*w] row-major. */
export function attentionMapsNchw(data: Float32Array, n: number, c: number, hw: number, p: number): Float32Array {
  return tf.tidy(() => new Float32Array(attentionMap(tf.tensor4d(data, [n, c, hw, 1]), 1, p).dataSync()));
}
