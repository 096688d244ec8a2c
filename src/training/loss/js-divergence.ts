/**
 * Jensen-Shannon divergence between the model's softmax p and a fixed distribution q fed per batch (another
 * model's softmax at the same images), weighted per image, batch mean:
 *   w_i * sum_k [ (p log p + q log q) / 2 - (p + q) / 2 * log((p + q) / 2) ],   p, q clamped below at 1e-8,
 * the form of SAU's shared-PGD loss (BackdoorBench defense/sau.py). Only p carries a gradient; for the
 * gradient through both models each model's pass takes the other's softmax as q, and the two add up.
 */
import type { LossTerm, TermContext } from './loss-term.js';

export const PROBABILITY_FLOOR = 1e-8;

export function jsDivergenceTerm(name: string, otherInput: string, weightInput: string, classes: number, weight = 1): LossTerm {
  return {
    name, weight, tensors: [], params: [],
    inputs: [{ name: otherInput, dims: [-1, classes] }, { name: weightInput, dims: [-1] }],
    build<T>(c: TermContext<T>): T {
      const o = c.ops;
      const p = o.clip(o.exp(o.logSoftmax(c.logits, 1)), PROBABILITY_FLOOR);
      const q = c.input(otherInput);
      const half = o.scalar(0.5);
      const logMix = o.log(o.mul(o.add(p, q), half));
      const own = o.mul(o.add(o.mul(p, o.log(p)), o.mul(q, o.log(q))), half);
      const cross = o.mul(o.mul(o.add(p, q), half), logMix);
      return o.batchMean(o.mul(c.input(weightInput), o.sum(o.sub(own, cross), [1], false)));
    },
  };
}
