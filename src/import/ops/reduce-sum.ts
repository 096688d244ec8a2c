/** ReduceSum (axes as an input from opset 13). */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';
import { reduceOver } from './reduce-mean.js';

export function reduceSum(ctx: OpContext): Value[] {
  return reduceOver(ctx, tf.sum);
}
