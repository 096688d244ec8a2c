/** ReduceMax (torch.amax, x.max(dim).values). Tied maxima share the gradient evenly, as torch.amax does. */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';
import { reduceOver } from './reduce-mean.js';

function amax(x: tf.Tensor, axes: number[], keepDims: boolean): tf.Tensor {
  const f = tf.customGradient<[tf.Tensor]>((xi, save) => {
    const y = tf.max(xi, axes, true);
    save([xi, y]);
    return {
      value: keepDims ? y : tf.squeeze(y, axes),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ys] = saved as [tf.Tensor, tf.Tensor];
        const mask = tf.cast(tf.equal(xs, ys), 'float32');
        const share = tf.div(mask, tf.sum(mask, axes, true));
        return tf.mul(share, tf.reshape(dy, ys.shape));
      },
    };
  });
  return f(x);
}

export function reduceMax(ctx: OpContext): Value[] {
  return reduceOver(ctx, amax);
}
