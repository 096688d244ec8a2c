/** Elu: x for x > 0, alpha * (exp(x) - 1) otherwise (alpha 1 by default). */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';

/**
 * relu(x) + alpha * (exp(min(x, 0)) - 1): x above 0, alpha * (exp(x) - 1) below. Written without a
 * comparison (tfjs has no gradient for Greater), and exp only sees x <= 0, so no infinity reaches the gradient.
 */
export function eluOf(x: tf.Tensor, alpha: number): tf.Tensor {
  return tf.add(tf.relu(x), tf.mul(alpha, tf.sub(tf.exp(tf.minimum(x, 0)), 1)));
}

export function elu(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [{ t: eluOf(v.t, ctx.node.attrs.float('alpha', 1)), nhwc: v.nhwc }];
}
