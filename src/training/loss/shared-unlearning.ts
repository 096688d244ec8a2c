/**
 * SAU's shared-adversarial unlearning loss (Wei et al., NeurIPS 2023; BackdoorBench defense/sau.py): on the
 * adversarial images that fooled the frozen original model, push the defended model's probability of the
 * original's adversarial label down. With h the one-hot of that label and p the softmax, per image:
 *   w_i * ( -log(1e-6 + min(sum_k (1 - h_k) p_k, 0.999)) - log(1 + 1e-6 - max(sum_k h_k p_k, 0.001)) ) / 2,
 * batch mean; w_i selects the images (and scales for a mean over part of the batch). The clamps stop the
 * gradient of images already unlearned, as the authors' code does.
 */
import type { LossTerm, TermContext } from './loss-term.js';

export function sharedUnlearningTerm(name: string, labelsInput: string, weightInput: string, classes: number, weight = 1): LossTerm {
  return {
    name, weight, tensors: [], params: [],
    inputs: [{ name: labelsInput, dims: [-1, classes] }, { name: weightInput, dims: [-1] }],
    build<T>(c: TermContext<T>): T {
      const o = c.ops;
      const p = o.exp(o.logSoftmax(c.logits, 1));
      const h = c.input(labelsInput);
      const pos = o.sum(o.mul(h, p), [1], false);
      const neg = o.sum(o.mul(o.sub(o.scalar(1), h), p), [1], false);
      const a = o.log(o.add(o.scalar(1e-6), o.clip(neg, undefined, 0.999)));
      const b = o.log(o.sub(o.scalar(1 + 1e-6), o.clip(pos, 0.001)));
      return o.batchMean(o.mul(c.input(weightInput), o.mul(o.neg(o.add(a, b)), o.scalar(0.5))));
    },
  };
}
