/** Softplus: log(1 + exp(x)). */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';

export function softplus(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [{ t: tf.softplus(v.t), nhwc: v.nhwc }];
}
