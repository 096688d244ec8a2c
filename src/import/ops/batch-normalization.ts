/**
 * BatchNormalization. Inference uses the running statistics; training uses batch statistics (biased
 * variance for normalising, unbiased for the running update, as PyTorch does) with an analytic gradient
 * (tfjs's gradient of tf.moments goes through Tile ops that took 417 of a 1,650 ms WRN-16-1 step on wasm).
 */
import * as tf from '../../tf.js';
import type { OpContext, Value } from './op-types.js';

function reduceAxes(v: Value, where: string): number[] {
  if (v.nhwc) return [0, 1, 2];
  if (v.t.rank === 2) return [0];
  throw new Error(`${where}: supports N,C,H,W and N,C inputs, got rank ${v.t.rank}`);
}

/** y = x * a + b with per-channel a, b shaped to broadcast against the stored layout. */
function channelShape(v: Value): number[] {
  return v.nhwc ? [v.t.shape[3]!] : [v.t.shape[1]!];
}

export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, axes: number[], eps: number) {
  let stats: { mean: tf.Tensor1D; variance: tf.Tensor1D } | undefined;
  const f = tf.customGradient<[tf.Tensor, tf.Tensor, tf.Tensor]>((xi, g, b, save) => {
    const { mean, variance } = tf.moments(xi, axes);
    const invStd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(tf.sub(xi, mean), invStd);
    stats = { mean: tf.keep(mean.clone()) as tf.Tensor1D, variance: tf.keep(variance.clone()) as tf.Tensor1D };
    save([xhat, invStd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxhat, sinv, sg] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dbeta = tf.sum(dy, axes);
        const dgamma = tf.sum(tf.mul(dy, sxhat), axes);
        // dx = gamma * invStd * (dy - mean(dy) - xhat * mean(dy * xhat))
        const m = axes.reduce((acc, a) => acc * dy.shape[a]!, 1);
        const t = tf.sub(tf.sub(dy, tf.div(dbeta, m)), tf.mul(sxhat, tf.div(dgamma, m)));
        const dx = tf.mul(t, tf.mul(sg, sinv));
        // gamma and beta arrive shaped to broadcast ([C] for NHWC, [1, C] for N x C): give their shape back.
        return [dx, dgamma.reshape(sg.shape), dbeta.reshape(sg.shape)];
      },
    };
  });
  const y = f(x, gamma, beta);
  return { y, stats: stats! };
}

export function batchNormalization(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  const axes = reduceAxes(v, ctx.where);
  const eps = ctx.node.attrs.float('epsilon', 1e-5);
  const momentum = ctx.node.attrs.float('momentum', 0.9);
  const gamma = ctx.param(1), beta = ctx.param(2), mean = ctx.param(3), variance = ctx.param(4);
  if (!gamma || !beta || !mean || !variance) throw new Error(`${ctx.where}: scale, bias, mean and var must be initializers`);
  const c = channelShape(v)[0]!;
  if ([gamma, beta, mean, variance].some((p) => p.size !== c)) throw new Error(`${ctx.where}: parameters do not match ${c} channels`);
  const bshape = v.nhwc ? [c] : [1, c];
  if (ctx.training && ctx.bnUsesBatchStats) {
    const { y, stats } = batchNormTrain(v.t, gamma.reshape(bshape), beta.reshape(bshape), axes, eps);
    const m = axes.reduce((acc, a) => acc * v.t.shape[a]!, 1);
    const unbiased = tf.keep(tf.mul(stats.variance, m / Math.max(1, m - 1))) as tf.Tensor1D;
    stats.variance.dispose();
    ctx.addRunningStatUpdate({
      meanName: ctx.node.inputs[3]!, varName: ctx.node.inputs[4]!, batchMean: stats.mean, batchVarUnbiased: unbiased, momentum,
    });
    return [{ t: y, nhwc: v.nhwc }];
  }
  const a = tf.mul(gamma, tf.rsqrt(tf.add(variance, eps)));
  const b = tf.sub(beta, tf.mul(mean, a));
  return [{ t: tf.add(tf.mul(v.t, a.reshape(bshape)), b.reshape(bshape)), nhwc: v.nhwc }];
}
