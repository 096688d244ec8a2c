/**
 * NAD's attention map, as the authors' public code computes it: a = mean_c |F_c|^p over the channels, then
 * per sample a / (||a||_2 + 1e-6) over H x W. Written once, for every engine and the report. `sum` is p = 1;
 * after the normalisation `mean-pow` and `pow` are the same map (the 1/C factor cancels).
 */
import type { TensorOps } from './tensor-ops.js';

export type AttentionKind = 'sum' | 'pow' | 'mean-pow';

export function attentionExponent(kind: AttentionKind, p: number): number {
  return kind === 'sum' ? 1 : p;
}

/** Normalised attention maps [N, H*W] of a feature map with channels on `channelAxis` (1 or 3). */
export function attentionMap<T>(o: TensorOps<T>, f: T, channelAxis: number, hw: number, p: number): T {
  const a = p === 2 ? o.mul(f, f) : p === 1 ? o.abs(f) : o.pow(o.abs(f), p);
  const flat = o.reshape(o.mean(a, [channelAxis], false), [-1, hw]);
  // The 1e-24 keeps the gradient finite for an all-zero map (a dead ReLU tap): sqrt'(0) is infinite and
  // infinity x 0 is NaN, where PyTorch's norm backward gives 0. It moves no norm above ~1e-12.
  const norm = o.sqrt(o.add(o.sum(o.mul(flat, flat), [1], true), o.scalar(1e-24)));
  return o.div(flat, o.add(norm, o.scalar(1e-6)));
}

/** Mean squared difference of two normalised maps [N, H*W] (mean over batch and positions). */
export function attentionDistance<T>(o: TensorOps<T>, s: T, t: T): T {
  const d = o.sub(s, t);
  return o.batchMean(o.mean(o.mul(d, d), [1], false));
}
