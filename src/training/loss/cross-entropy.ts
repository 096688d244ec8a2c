/**
 * Cross-entropy on the logits with optional label smoothing: the loss is the batch mean of
 * -sum_k target_k * log_softmax(logits)_k. Smoothing `over: 'all'` is torch's label_smoothing (target
 * (1 - eps) * one-hot + eps / classes); `over: 'others'` is BackdoorBench's smooth_crossentropy (1 - eps on
 * the label, eps / (classes - 1) on each other class).
 */
import type { LossTerm, TermContext } from './loss-term.js';

export function crossEntropyTerm(classes: number, smoothing = 0, over: 'all' | 'others' = 'all', weight = 1): LossTerm {
  const TARGETS = 'loss#targets';
  return {
    name: 'ce', weight, tensors: [], params: [],
    inputs: [{ name: TARGETS, dims: [-1, classes] }],
    feed(labels, n) {
      const off = over === 'all' ? smoothing / classes : smoothing / (classes - 1);
      const on = over === 'all' ? 1 - smoothing + smoothing / classes : 1 - smoothing;
      const t = new Float32Array(n * classes).fill(off);
      for (let i = 0; i < n; i++) t[i * classes + labels[i]!] = on;
      return { [TARGETS]: t };
    },
    build<T>(c: TermContext<T>): T {
      const o = c.ops;
      return o.neg(o.batchMean(o.sum(o.mul(c.input(TARGETS), o.logSoftmax(c.logits, 1)), [1], false)));
    },
  };
}
