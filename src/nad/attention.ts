/**
 * NAD attention maps and distillation loss, as the authors' public code computes them (NOTES.md §1):
 * a = mean_c |F_c|^p, normalised per sample by its L2 norm over H x W (+1e-6); the loss is the mean
 * squared difference of the student's and teacher's normalised maps. `sum` is p = 1; after the
 * normalisation `mean-pow` and `pow` are the same map (the 1/C factor cancels).
 */
import * as tf from '../tf.js';

export type AttentionKind = 'sum' | 'pow' | 'mean-pow';

export function attentionExponent(kind: AttentionKind, p: number): number {
  return kind === 'sum' ? 1 : p;
}

/** Normalised attention maps [N, H*W] of a feature map whose channel axis is `channelAxis`. */
export function attentionMap(f: tf.Tensor, channelAxis: number, p: number): tf.Tensor2D {
  // |f| as f * sign(f): tfjs's abs gradient at exactly 0 is -1, PyTorch's is 0 (ReLU taps are full of zeros).
  const abs = () => tf.mul(f, tf.sign(f));
  const a = p === 1 ? abs() : p === 2 ? tf.square(f) : tf.pow(abs(), p);
  const m = tf.mean(a, channelAxis); // [N, H, W]
  const flat = m.reshape([m.shape[0]!, -1]) as tf.Tensor2D;
  // The 1e-24 keeps the gradient finite for an all-zero map (a dead ReLU tap): sqrt'(0) is infinite and
  // infinity x 0 is NaN, where PyTorch's norm backward gives 0. It moves no norm above ~1e-12.
  const norm = tf.sqrt(tf.add(tf.sum(tf.square(flat), 1, true), 1e-24));
  return tf.div(flat, tf.add(norm, 1e-6)) as tf.Tensor2D;
}

/** Mean squared error between two normalised attention maps [N, H*W]. */
export function attentionLoss(student: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  return tf.mean(tf.square(tf.sub(student, teacher))) as tf.Scalar;
}

/**
 * The same normalised maps in plain JS, for NCHW tensors that come out of onnxruntime (the frozen teacher,
 * the report's figure): [n, h*w] row-major.
 */
export function attentionMapsNchw(data: Float32Array, n: number, c: number, hw: number, p: number): Float32Array {
  const maps = new Float32Array(n * hw);
  for (let b = 0; b < n; b++) {
    const base = b * c * hw;
    for (let k = 0; k < c; k++) {
      for (let q = 0; q < hw; q++) {
        const v = Math.abs(data[base + k * hw + q]!);
        maps[b * hw + q] += p === 2 ? v * v : p === 1 ? v : Math.pow(v, p);
      }
    }
    let norm = 0;
    for (let q = 0; q < hw; q++) {
      maps[b * hw + q] /= c;
      norm += maps[b * hw + q]! ** 2;
    }
    norm = Math.sqrt(norm) + 1e-6;
    for (let q = 0; q < hw; q++) maps[b * hw + q] /= norm;
  }
  return maps;
}
