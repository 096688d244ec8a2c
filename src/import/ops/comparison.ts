/** Equal, Greater, Less, GreaterOrEqual, LessOrEqual and Not: boolean tensors for Where (masked_fill exports). */
import * as tf from '../../tf.js';
import { nchw, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

/** tfjs registers no gradient for comparisons and stops a backward pass at them; a boolean's is zero. */
function withoutGradient(f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): (a: tf.Tensor, b: tf.Tensor) => tf.Tensor {
  return tf.customGradient<[tf.Tensor, tf.Tensor]>((a, b) => ({
    value: f(a, b),
    gradFunc: () => [tf.zerosLike(a), tf.zerosLike(b)],
  }));
}

const compare = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) => {
  const g = withoutGradient(f);
  return (ctx: OpContext): Value[] => {
    const a = nchw(ctx.input(0)), b = nchw(ctx.input(1));
    const dtype = a.dtype === 'float32' || b.dtype === 'float32' ? 'float32' : a.dtype;
    return [plain(g(a.dtype === dtype ? a : tf.cast(a, dtype), b.dtype === dtype ? b : tf.cast(b, dtype)))];
  };
};

export const equal = compare(tf.equal);
export const greater = compare(tf.greater);
export const less = compare(tf.less);
export const greaterOrEqual = compare(tf.greaterEqual);
export const lessOrEqual = compare(tf.lessEqual);

export function not(ctx: OpContext): Value[] {
  return [plain(tf.logicalNot(nchw(ctx.input(0))))];
}
