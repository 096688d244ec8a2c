/** TensorOps as TensorFlow.js ops, for the tfjs engine (tf.variableGrads differentiates them) and for JS-side maps. */
import * as tf from '../tf.js';
import type { TensorOps } from './loss/tensor-ops.js';

export const tfjsOps: TensorOps<tf.Tensor> = {
  scalar: (v) => tf.scalar(v),
  add: (a, b) => tf.add(a, b),
  sub: (a, b) => tf.sub(a, b),
  mul: (a, b) => tf.mul(a, b),
  div: (a, b) => tf.div(a, b),
  neg: (a) => tf.neg(a),
  sqrt: (a) => tf.sqrt(a),
  exp: (a) => tf.exp(a),
  // |a| as a * sign(a): tfjs's abs gradient at exactly 0 is -1, PyTorch's is 0 (ReLU taps are full of zeros).
  abs: (a) => tf.mul(a, tf.sign(a)),
  pow: (a, p) => tf.pow(a, p),
  log: (a) => tf.log(a),
  clip: (a, min, max) => tf.clipByValue(a, min ?? -Infinity, max ?? Infinity),
  sum: (a, axes, keep) => tf.sum(a, axes, keep),
  mean: (a, axes, keep) => tf.mean(a, axes, keep),
  batchMean: (a) => tf.mean(a, 0),
  reshape: (a, shape) => tf.reshape(a, shape),
  logSoftmax: (a, axis) => tf.logSoftmax(a, axis),
};
