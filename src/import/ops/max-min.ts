/** Max and Min over any number of inputs, with numpy broadcasting. */
import * as tf from '../../tf.js';
import { binary } from './elementwise.js';
import type { OpContext, Value } from './op-types.js';

function variadic(fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) {
  const two = binary(fn);
  return (ctx: OpContext): Value[] => {
    let acc = ctx.input(0);
    for (let i = 1; i < ctx.node.inputs.length; i++) {
      acc = two({ ...ctx, input: (k: number) => (k === 0 ? acc : ctx.input(i)) } as OpContext)[0]!;
    }
    return [acc];
  };
}

export const max = variadic(tf.maximum);
export const min = variadic(tf.minimum);
