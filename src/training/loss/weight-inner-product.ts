/**
 * FST's feature-shift term: the inner product <W, W0> of a layer's weight with its value before tuning
 * (sum of elementwise products). Minimising it pushes the new weight away from the backdoored one.
 */
import type { LossTerm, TermContext } from './loss-term.js';

export function weightInnerProductTerm(param: string, original: Float32Array, dims: number[], weight: number): LossTerm {
  return {
    name: 'inner', weight, tensors: [], params: [param], inputs: [],
    build<T>(c: TermContext<T>): T {
      const o = c.ops;
      const all = dims.map((_, i) => i);
      return o.sum(o.mul(c.param(param), c.constant(`loss#${param}#original`, original, dims)), all, false);
    },
  };
}
