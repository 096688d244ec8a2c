/** Erf, elementwise (GELU exports as x * 0.5 * (1 + Erf(x / sqrt 2))). */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';

export function erf(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [{ t: tf.erf(v.t), nhwc: v.nhwc }];
}
