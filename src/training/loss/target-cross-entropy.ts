/**
 * Cross-entropy against per-batch target rows fed by the method (Batch.extras): the batch mean of
 * -sum_k targets_k * log_softmax(logits)_k. A row of zeros leaves its image out and a scaled row weighs it,
 * so selections by the model's own predictions (SAU's not-yet-fooled images) and means over part of a batch
 * are exact.
 */
import type { LossTerm, TermContext } from './loss-term.js';

export function targetCrossEntropyTerm(name: string, input: string, classes: number, weight = 1): LossTerm {
  return {
    name, weight, tensors: [], params: [],
    inputs: [{ name: input, dims: [-1, classes] }],
    build<T>(c: TermContext<T>): T {
      const o = c.ops;
      return o.neg(o.batchMean(o.sum(o.mul(c.input(input), o.logSoftmax(c.logits, 1)), [1], false)));
    },
  };
}
