/** HardSwish: x * HardSigmoid(x) with alpha 1/6, beta 0.5 (MobileNetV3's activation). */
import * as tf from '../../tf.js';
import { hardSigmoidOf } from './hard-sigmoid.js';
import type { OpContext, Value } from './op-types.js';

export function hardSwish(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [{ t: tf.mul(v.t, hardSigmoidOf(v.t, 1 / 6, 0.5)), nhwc: v.nhwc }];
}
