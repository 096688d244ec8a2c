/**
 * ReduceMean (as `x.mean((2, 3))` exports it), and the reduction every Reduce* op shares: axes from the
 * attribute or (ReduceSum from opset 13, the others from 18) the input, keepdims, noop_with_empty_axes.
 */
import * as tf from '../../tf.js';
import { NCHW_TO_NHWC_AXIS, nchw, normAxis } from './layout.js';
import type { OpContext, Value } from './op-types.js';

type Reducer = (x: tf.Tensor, axes: number[], keepDims: boolean) => tf.Tensor;

export function reduceMean(ctx: OpContext): Value[] {
  return reduceOver(ctx, tf.mean);
}

export function reduceOver(ctx: OpContext, reduce: Reducer): Value[] {
  const v = ctx.input(0);
  const keep = ctx.node.attrs.int('keepdims', 1) === 1;
  const rank = v.t.rank;
  let axes = ctx.node.attrs.ints('axes', undefined) ?? (ctx.node.inputs[1] ? ctx.ints(1) : undefined);
  if (!axes || axes.length === 0) {
    if (ctx.node.attrs.int('noop_with_empty_axes', 0) === 1) return [v];
    axes = [...Array(rank).keys()];
  }
  const norm = axes.map((a) => normAxis(a, rank, ctx.where));
  if (v.nhwc) {
    const stored = norm.map((a) => NCHW_TO_NHWC_AXIS[a]!);
    const y = reduce(v.t, stored, keep);
    if (keep) return [{ t: y, nhwc: true }];
    // Without keepdims the remaining axes keep their NCHW order only if C is not followed by H/W.
    const sorted = [...norm].sort();
    if (sorted.join() === '2,3' || sorted.join() === '1,2,3' || sorted.join() === '0,1,2,3') return [{ t: y, nhwc: false }];
  }
  return [{ t: reduce(nchw(v), norm, keep), nhwc: false }];
}
