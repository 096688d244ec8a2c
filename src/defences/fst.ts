/**
 * `fst`, feature shift tuning (Min et al., NeurIPS 2023; the authors' fine_tune/ft.py --ft_mode fst): the
 * final linear layer is re-initialised (uniform +-1/sqrt(fan_in), weight and bias, PyTorch's Linear init),
 * then every layer is tuned with CE + alpha * <W, W0> on that layer's weight (W0 its backdoored value), and
 * after every step W is rescaled to W0's Frobenius norm. Defaults as the authors': alpha 0.2, SGD lr 0.01
 * momentum 0.9 without weight decay, cosine over 10 epochs, batch 128, random crop + flip, BatchNorm in train mode.
 */
import { Rng } from '../data/random.js';
import { crossEntropyTerm } from '../training/loss/cross-entropy.js';
import { weightInnerProductTerm } from '../training/loss/weight-inner-product.js';
import { Sgd, type SgdConfig } from '../training/optimizers/sgd.js';
import type { ParameterStore } from '../training/parameter-store.js';
import { describeSchedule, type LrSchedule } from '../training/schedule.js';
import { plainStep } from '../training/steps.js';
import type { Defence } from './defence.js';
import { checkCommon, nonNegative } from './checks.js';
import { findFinalLinear, type FinalLinear } from './final-linear.js';
import { CROP_FLIP } from './ft-sam.js';
import type { MethodOptions } from './method-options.js';
import { trainCopy } from './train-copy.js';

export interface FstOptions {
  epochs: number;
  batch: number;
  schedule: LrSchedule;
  sgd: SgdConfig;
  alpha: number;
}

function frobenius(a: Float32Array): number {
  let s = 0;
  for (const v of a) s += v * v;
  return Math.sqrt(s);
}

/** FST's loss terms and its after-step rescale, for the final layer `lin` whose backdoored weight is `original`. */
export function fstStepParts(numClasses: number, lin: FinalLinear, original: Float32Array, dims: number[], alpha: number) {
  const norm0 = frobenius(original);
  return {
    terms: [crossEntropyTerm(numClasses), weightInnerProductTerm(lin.weight, original, dims, alpha)],
    rescale: (s: ParameterStore) => {
      const v = s.get(lin.weight).value;
      const f = norm0 / frobenius(v);
      for (let i = 0; i < v.length; i++) v[i] = v[i]! * f;
    },
  };
}

/**
 * PyTorch's nn.Linear initialisation, uniform +-1/sqrt(fan_in), drawn in the order of PyTorch's [out, in]
 * weight (so a same-stream reference draws the same values) and then the bias.
 */
export function reinitialiseLinear(store: ParameterStore, lin: FinalLinear, rng: Rng): void {
  const bound = 1 / Math.sqrt(lin.fanIn);
  const draw = () => (2 * rng.next() - 1) * bound;
  const w = store.get(lin.weight);
  const [rows, cols] = w.dims as [number, number];
  // A Gemm with transB holds [out, in] like PyTorch; a MatMul (or Gemm without transB) holds [in, out].
  if (lin.outFirst) for (let i = 0; i < w.value.length; i++) w.value[i] = draw();
  else for (let o = 0; o < cols; o++) for (let i = 0; i < rows; i++) w.value[i * cols + o] = draw();
  if (lin.bias) {
    const b = store.get(lin.bias).value;
    for (let i = 0; i < b.length; i++) b[i] = draw();
  }
}

export const fst: Defence<FstOptions> = {
  name: 'fst',
  summary: 'feature shift tuning (Min et al. 2023)',
  options: ['alpha', 'baseline'],
  resolve(o: MethodOptions): FstOptions {
    checkCommon(o);
    nonNegative(o.alpha, '--alpha');
    const epochs = o.epochs ?? 10;
    return {
      epochs, batch: o.batch ?? 128, schedule: { kind: 'cosine', lr: o.lr ?? 0.01, epochs },
      sgd: { momentum: o.momentum ?? 0.9, nesterov: false, weightDecay: o.weightDecay ?? 0 }, alpha: o.alpha ?? 0.2,
    };
  },
  describe: (r) => ({
    epochs: r.epochs, lr: r.schedule.lr, schedule: describeSchedule(r.schedule), batch: r.batch, optimizer: 'sgd', momentum: r.sgd.momentum,
    nesterov: r.sgd.nesterov, weight_decay: r.sgd.weightDecay, alpha: r.alpha, augmentation: 'RandomCrop(pad 4) + HorizontalFlip',
  }),
  provenance: 'feature-shift-tuning',
  stateFactor: (r) => (r.sgd.momentum !== 0 ? 1 : 0),
  train(ctx, r, slot) {
    return trainCopy(ctx, slot, (model, store) => {
      const lin = findFinalLinear(model);
      const w = store.get(lin.weight);
      const { terms, rescale } = fstStepParts(model.numClasses, lin, w.value.slice(), w.dims, r.alpha);
      // Re-initialise from a stream of its own, so the training stream is the same with or without FST.
      reinitialiseLinear(store, lin, new Rng(ctx.seed + 3));
      const opt = new Sgd(r.sgd);
      return {
        title: 'FST', optimizer: opt, gradients: { terms },
        step: (engine) => plainStep(engine, store, opt, rescale), epochs: r.epochs, batch: r.batch, schedule: r.schedule, augment: CROP_FLIP,
      };
    });
  },
};
