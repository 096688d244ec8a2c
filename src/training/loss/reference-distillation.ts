/**
 * A term against a frozen reference model: T^2 * KL(softmax(reference / T) || softmax(logits / T)), batch
 * mean (Hinton et al.'s distillation loss). The reference's logits are a per-batch input (a FrozenModel's
 * output), so no gradient reaches the reference.
 */
import type { LossTerm, TermContext } from './loss-term.js';

export const REFERENCE_LOGITS = 'loss#reference_logits';

export function referenceDistillationTerm(classes: number, temperature: number, weight: number): LossTerm {
  return {
    name: 'reference', weight, tensors: [], params: [],
    inputs: [{ name: REFERENCE_LOGITS, dims: [-1, classes] }],
    build<T>(c: TermContext<T>): T {
      const o = c.ops;
      const t = o.scalar(1 / temperature);
      const logRef = o.logSoftmax(o.mul(c.input(REFERENCE_LOGITS), t), 1);
      const logOwn = o.logSoftmax(o.mul(c.logits, t), 1);
      const kl = o.sum(o.mul(o.exp(logRef), o.sub(logRef, logOwn)), [1], false);
      return o.mul(o.batchMean(kl), o.scalar(temperature * temperature));
    },
  };
}
