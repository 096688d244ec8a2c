/** Selu: gamma * Elu_alpha(x), with ONNX's (and PyTorch's) default alpha and gamma. */
import * as tf from '../../tf.js';
import { eluOf } from './elu.js';
import type { OpContext, Value } from './op-types.js';

export function selu(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  const alpha = ctx.node.attrs.float('alpha', 1.6732632423543772), gamma = ctx.node.attrs.float('gamma', 1.0507009873554805);
  return [{ t: tf.mul(gamma, eluOf(v.t, alpha)), nhwc: v.nhwc }];
}
