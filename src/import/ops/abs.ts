/** Abs, elementwise; as x * sign(x), so that its gradient at 0 is PyTorch's 0 (tfjs's own abs gives -1 there). */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';

export function abs(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  return [{ t: tf.mul(v.t, tf.sign(v.t)), nhwc: v.nhwc }];
}
