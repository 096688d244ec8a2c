/** Exp, elementwise. */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';

export function exp(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [{ t: tf.exp(v.t), nhwc: v.nhwc }];
}
