/** Tanh. */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';

export function tanh(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [{ t: tf.tanh(v.t), nhwc: v.nhwc }];
}
