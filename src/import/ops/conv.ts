/** Conv (2-D): strides, pads / auto_pad, dilations, groups and bias, on NHWC activations. */
import * as tf from '../../tf.js';
import { conv2dTrainable } from '../../backend/conv2d-gradients.js';
import { depthwiseConv2dTrainable } from '../../backend/depthwise-conv2d-gradients.js';
import { batchNormTrain } from './batch-normalization.js';
import { nhwc, spatial } from './layout.js';
import type { OpContext, RestoredBatchNorm, Value } from './op-types.js';

/** The restored normalisation: batch statistics in training, running statistics otherwise. */
function restoredNorm(ctx: OpContext, z: tf.Tensor4D, bn: RestoredBatchNorm): tf.Tensor {
  if (ctx.training && ctx.bnUsesBatchStats) {
    const { y, stats } = batchNormTrain(z, bn.gamma, bn.beta, [0, 1, 2], bn.eps);
    const m = z.shape[0] * z.shape[1] * z.shape[2];
    const unbiased = tf.keep(tf.mul(stats.variance, m / Math.max(1, m - 1))) as tf.Tensor1D;
    stats.variance.dispose();
    ctx.addRunningStatUpdate({ meanName: bn.meanName, varName: bn.varName, batchMean: stats.mean, batchVarUnbiased: unbiased, momentum: bn.momentum });
    return y;
  }
  const a = tf.mul(bn.gamma, tf.rsqrt(tf.add(bn.variance, bn.eps)));
  return tf.add(tf.mul(z, a), tf.sub(bn.beta, tf.mul(bn.mean, a)));
}

/** Explicit [top, left, bottom, right] pads from ONNX pads / auto_pad. */
export function resolvePads(
  ctx: Pick<OpContext, 'node' | 'where'>, inHW: number[], kernel: number[], strides: number[], dilations: number[],
): [number, number, number, number] {
  const autoPad = ctx.node.attrs.string('auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const p = ctx.node.attrs.ints('pads', [0, 0, 0, 0])!;
    if (p.length !== 4 || p.some((x) => x < 0)) throw new Error(`${ctx.where}: pads must be 4 non-negative values, got [${p}]`);
    return [p[0]!, p[1]!, p[2]!, p[3]!];
  }
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') throw new Error(`${ctx.where}: unknown auto_pad '${autoPad}'`);
  const begin: number[] = [], end: number[] = [];
  for (let i = 0; i < 2; i++) {
    const out = Math.ceil(inHW[i]! / strides[i]!);
    const total = Math.max(0, (out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - inHW[i]!);
    const small = Math.floor(total / 2);
    begin.push(autoPad === 'SAME_UPPER' ? small : total - small);
    end.push(autoPad === 'SAME_UPPER' ? total - small : small);
  }
  return [begin[0]!, begin[1]!, end[0]!, end[1]!];
}

export function conv(ctx: OpContext): Value[] {
  const x = nhwc(ctx.input(0), ctx.where);
  const w = ctx.param(1);
  if (!w || w.rank !== 4) throw new Error(`${ctx.where}: only 2-D convolutions with a constant weight are supported`);
  const [kh, kw, ciPerGroup, co] = w.shape as [number, number, number, number];
  const group = ctx.node.attrs.int('group', 1);
  const ci = x.shape[3];
  if (group < 1 || ci !== ciPerGroup * group || co % group !== 0) {
    throw new Error(`${ctx.where}: input has ${ci} channels, weight expects ${ciPerGroup} x ${group} groups`);
  }
  const strides = ctx.node.attrs.ints('strides', [1, 1])!;
  const dilations = ctx.node.attrs.ints('dilations', [1, 1])!;
  if (strides.length !== 2 || dilations.length !== 2 || [...strides, ...dilations].some((v) => v < 1)) {
    throw new Error(`${ctx.where}: strides and dilations must be two positive values`);
  }
  const pads = resolvePads(ctx, [x.shape[1], x.shape[2]], [kh, kw], strides, dilations);
  const params = {
    strides: [strides[0]!, strides[1]!] as [number, number],
    pads,
    dilations: [dilations[0]!, dilations[1]!] as [number, number],
  };
  let y: tf.Tensor4D;
  if (group === 1) {
    y = conv2dTrainable(x, w as tf.Tensor4D, params);
  } else if (ciPerGroup === 1 && group === ci && !(params.strides.some((s) => s > 1) && params.dilations.some((d) => d > 1))) {
    // Depthwise: the stored [KH, KW, 1, C*m] weight is tfjs's [KH, KW, C, m] filter.
    y = depthwiseConv2dTrainable(x, w.reshape([kh, kw, ci, co / ci]) as tf.Tensor4D, params);
  } else {
    // tf.conv2d has no groups argument: one conv per group, concatenated along channels.
    const xs = tf.split(x, group, 3);
    const ws = tf.split(w, group, 3);
    y = tf.concat(xs.map((xg, g) => conv2dTrainable(xg as tf.Tensor4D, ws[g] as tf.Tensor4D, params)), 3);
  }
  const bn = ctx.restoredBatchNorm;
  if (bn) return [spatial(restoredNorm(ctx, y, bn))];
  const b = ctx.param(2);
  if (b) y = tf.add(y, b);
  return [spatial(y)];
}
