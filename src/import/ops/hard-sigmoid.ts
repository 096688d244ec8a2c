/** HardSigmoid: max(0, min(1, alpha * x + beta)); PyTorch exports its Hardsigmoid with alpha 1/6. */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';

export function hardSigmoidOf(x: tf.Tensor, alpha: number, beta: number): tf.Tensor {
  // clipByValue's gradient is 1 strictly inside the range, as PyTorch's hardsigmoid backward.
  return tf.clipByValue(tf.add(tf.mul(x, alpha), beta), 0, 1);
}

export function hardSigmoid(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [{ t: hardSigmoidOf(v.t, ctx.node.attrs.float('alpha', 0.2), ctx.node.attrs.float('beta', 0.5)), nhwc: v.nhwc }];
}
