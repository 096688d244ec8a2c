/**
 * Neural Cleanse trigger reverse-engineering for one target class (Wang et al., IEEE S&P 2019; the
 * bookkeeping of the authors' visualizer.py, the parametrisation and loss of BackdoorBench's defense/nc.py):
 *
 *   x' = (1 - m) * x + m * p  in [0, 1] pixel space, then the model's normalisation;
 *   m = tanh(a) / (2 + eps) + 0.5  (H x W, shared by the channels),  p = tanh(b) / (2 + eps) + 0.5  (C x H x W);
 *   loss = mean cross-entropy(model(x'), target) + cost * |m|_1,  Adam (lr 0.1, betas 0.5 / 0.9) on a and b.
 *
 * The gradient of the cross-entropy with respect to x' comes from the training engine (input gradients,
 * BatchNorm in eval mode, and the pass's logits for the batch's success); the chain rule to a and b is done here. Once per epoch (one pass over the scan
 * images in a fixed seeded order): the mask is kept as the best when the epoch's attack success reaches the
 * threshold with a smaller mean |m|_1 than before; the cost rises x2 after `patience` epochs at or above the
 * threshold and falls by 2^1.5 after `patience` below; the run stops early once the cost has moved both ways
 * and the best norm has not improved by 1 % for `earlyStopPatience` epochs.
 */
import type { Batch, GradientSpec, TrainingEngine } from '../training/engine.js';
import { crossEntropyTerm } from '../training/loss/cross-entropy.js';
import { INPUT_GRADIENT } from '../training/engine.js';
import { Adam } from '../training/optimizers/adam.js';
import { nchwToNhwc } from '../verify/onnx-runtime.js';
import type { FrozenModel } from '../training/frozen-model.js';
import { argmaxRows } from '../verify/predictions.js';

export interface NeuralCleanseConfig {
  /** Budget: passes over the scan images. */
  epochs: number;
  batch: number;
  lr: number;
  initCost: number;
  successThreshold: number;
  patience: number;
  costMultiplier: number;
  earlyStopThreshold: number;
  earlyStopPatience: number;
}

export const NEURAL_CLEANSE_DEFAULTS: NeuralCleanseConfig = {
  epochs: 20, batch: 32, lr: 0.1, initCost: 1e-3, successThreshold: 0.99, patience: 5, costMultiplier: 2,
  earlyStopThreshold: 0.99, earlyStopPatience: 10,
};

const EPS = 1e-7;

/** Clean images in [0, 1], NCHW, in the order the optimisation visits them. */
export interface ScanImages {
  nchw: Float32Array;
  labels: Int32Array;
  n: number;
  c: number;
  h: number;
  w: number;
  mean?: number[];
  std?: number[];
}

export interface ReversedTrigger {
  target: number;
  /** H x W in [0, 1]. */
  mask: Float32Array;
  /** C x H x W in [0, 1]. */
  pattern: Float32Array;
  /** |m|_1 of the kept mask. */
  maskL1: number;
  /** Whether any epoch reached the success threshold (else the last mask is kept). */
  reached: boolean;
  /** Fraction of the scan images of other classes that the kept trigger sends to the target. */
  triggerSuccess: number;
  epochs: number;
  finalCost: number;
}

/**
 * Neural Cleanse's per-epoch bookkeeping of the regularisation weight and the early stop: the cost rises
 * x multiplier after `patience` epochs at or above the success threshold and falls by multiplier^1.5 after
 * `patience` below; the run stops once the cost has moved both ways and the best norm has not improved by
 * (1 - earlyStopThreshold) for `earlyStopPatience` epochs.
 */
class CostSchedule {
  cost: number;
  private up = 0;
  private down = 0;
  private upFlag = false;
  private downFlag = false;
  private stalled = 0;
  private bestSeen = Infinity;

  constructor(private readonly cfg: Pick<NeuralCleanseConfig, 'initCost' | 'successThreshold' | 'patience' | 'costMultiplier' | 'earlyStopThreshold' | 'earlyStopPatience'>) {
    this.cost = cfg.initCost;
  }

  /** After an epoch with this success rate and best norm so far (undefined: none kept yet); true: stop. */
  afterEpoch(success: number, best: number | undefined): boolean {
    const c = this.cfg;
    if (best !== undefined) {
      this.stalled = best >= c.earlyStopThreshold * this.bestSeen ? this.stalled + 1 : 0;
      this.bestSeen = Math.min(best, this.bestSeen);
      if (this.upFlag && this.downFlag && this.stalled >= c.earlyStopPatience) return true;
    }
    if (success >= c.successThreshold) {
      this.up++;
      this.down = 0;
    } else {
      this.up = 0;
      this.down++;
    }
    if (this.up >= c.patience) {
      this.up = 0;
      this.cost *= c.costMultiplier;
      this.upFlag = true;
    } else if (this.down >= c.patience) {
      this.down = 0;
      this.cost /= c.costMultiplier ** 1.5;
      this.downFlag = true;
    }
    return false;
  }
}

/** Values in (0, 1) through tanh(raw) / (2 + eps) + 0.5, raw starting at 1 (BackdoorBench's start: about 0.88). */
export class SquashedValues {
  readonly raw: Float32Array;
  readonly value: Float32Array;

  constructor(n: number) {
    this.raw = new Float32Array(n).fill(1);
    this.value = new Float32Array(n);
    this.refresh();
  }

  /** Recomputes the values after raw changed. */
  refresh(): void {
    for (let i = 0; i < this.raw.length; i++) this.value[i] = Math.tanh(this.raw[i]!) / (2 + EPS) + 0.5;
  }

  /** A gradient with respect to the values, turned in place into one with respect to raw. */
  toRaw(g: Float32Array): Float32Array {
    for (let i = 0; i < g.length; i++) {
      const t = Math.tanh(this.raw[i]!);
      g[i] = g[i]! * ((1 - t * t) / (2 + EPS));
    }
    return g;
  }

  sum(): number {
    return this.value.reduce((a, v) => a + v, 0);
  }
}

/** One batch of a search: its hits on the target and the mask's |m|_1 before the update. */
export type SearchStep = (from: number, n: number, cost: number) => Promise<{ hits: number; l1: number }>;

/**
 * The search both signals share: per epoch one pass of `step` over [0, n) in batches; the mask kept as the
 * best when the epoch's success reaches the threshold with a smaller mean |m|_1 than before (`snapshot`
 * copies it); the cost schedule and early stop of CostSchedule.
 */
export async function runSearch<T>(
  cfg: NeuralCleanseConfig, n: number, step: SearchStep, snapshot: () => T, onEpoch?: (epoch: number, success: number, l1: number, cost: number) => void,
): Promise<{ best: T | undefined; last: T; epochs: number; finalCost: number }> {
  const schedule = new CostSchedule(cfg);
  let best: { value: T; l1: number } | undefined;
  let epoch = 0;
  for (; epoch < cfg.epochs; epoch++) {
    const cost = schedule.cost;
    let hits = 0, l1Sum = 0, batches = 0;
    for (let from = 0; from < n; from += cfg.batch) {
      const r = await step(from, Math.min(cfg.batch, n - from), cost);
      hits += r.hits;
      l1Sum += r.l1;
      batches++;
    }
    const success = hits / n, l1 = l1Sum / batches;
    onEpoch?.(epoch, success, l1, cost);
    if (success >= cfg.successThreshold && l1 < (best?.l1 ?? Infinity)) best = { value: snapshot(), l1 };
    if (schedule.afterEpoch(success, best?.l1)) {
      epoch++;
      break;
    }
  }
  return { best: best?.value, last: snapshot(), epochs: epoch, finalCost: schedule.cost };
}

/** x' = (1 - m) x + m p for images [from, from + n), normalised as the model expects (NCHW). */
function blend(img: ScanImages, from: number, n: number, mask: Float32Array, pattern: Float32Array): Float32Array {
  const { c, h, w } = img;
  const hw = h * w, size = c * hw;
  const out = new Float32Array(n * size);
  for (let i = 0; i < n; i++) {
    const src = (from + i) * size, dst = i * size;
    for (let k = 0; k < c; k++) {
      const mu = img.mean?.[k] ?? 0, sd = img.std?.[k] ?? 1;
      for (let p = 0; p < hw; p++) {
        const m = mask[p]!;
        out[dst + k * hw + p] = ((1 - m) * img.nchw[src + k * hw + p]! + m * pattern[k * hw + p]! - mu) / sd;
      }
    }
  }
  return out;
}

/** How many rows of N x classes logits pick `target` (ties: the first index, as argmax). */
export function countHits(logits: Float32Array, n: number, classes: number, target: number, keep?: (i: number) => boolean): number {
  const preds = argmaxRows(logits, n, classes);
  let hit = 0;
  for (let i = 0; i < n; i++) if (preds[i] === target && (!keep || keep(i))) hit++;
  return hit;
}

/** Hits on `target` among a batch's kept rows, and how many rows were kept. */
async function successOf(model: FrozenModel, x: Float32Array, dims: number[], target: number, classes: number, keep: (i: number) => boolean): Promise<[number, number]> {
  const [logits] = await model.run(x, dims);
  let count = 0;
  for (let i = 0; i < dims[0]!; i++) if (keep(i)) count++;
  return [countHits(logits!, dims[0]!, classes, target, keep), count];
}

/** The engine a trigger search runs on: the cross-entropy's gradient with respect to the images, the model's
 * weights and running statistics fixed (baked into onnxruntime's graph), and the pass's logits. */
export function triggerSearchSpec(classes: number): GradientSpec {
  return { terms: [crossEntropyTerm(classes)], input: true, params: false, constantParams: true, batchNorm: 'eval', logits: true };
}

/** `engine`: made with triggerSearchSpec. */
export async function reverseTrigger(
  engine: TrainingEngine, logitsModel: FrozenModel, img: ScanImages, target: number, classes: number, cfg: NeuralCleanseConfig,
  onEpoch?: (epoch: number, success: number, l1: number, cost: number) => void,
): Promise<ReversedTrigger> {
  const { c, h, w } = img;
  const hw = h * w, size = c * hw;
  const mask = new SquashedValues(hw), pattern = new SquashedValues(size);
  const adam = new Adam({ beta1: 0.5, beta2: 0.9, eps: 1e-8, weightDecay: 0 });
  const gMask = new Float32Array(hw), gPattern = new Float32Array(size);
  const step: SearchStep = async (from, n, cost) => {
    const m = mask.value, p = pattern.value;
    const x = blend(img, from, n, m, p);
    const batch: Batch = { nchw: x, nhwc: nchwToNhwc(x, n, c, h, w), labels: new Int32Array(n).fill(target), n };
    // The engine's pass also gives the logits: the batch's success before this update.
    const r = await engine.gradients(batch, new Map());
    if (!r.logits) throw new Error('reverseTrigger: the engine must return logits (GradientSpec.logits)');
    const g = r.grads.get(INPUT_GRADIENT)!;
    // dL/dm = sum over images and channels of g * (p - x) / std + cost; dL/dp = sum over images of g * m / std.
    gMask.fill(cost);
    gPattern.fill(0);
    for (let i = 0; i < n; i++) {
      const src = (from + i) * size, gi = i * size;
      for (let k = 0; k < c; k++) {
        const sd = img.std?.[k] ?? 1;
        for (let q = 0; q < hw; q++) {
          const gq = g[gi + k * hw + q]! / sd;
          gMask[q] += gq * (p[k * hw + q]! - img.nchw[src + k * hw + q]!);
          gPattern[k * hw + q] += gq * m[q]!;
        }
      }
    }
    const l1 = mask.sum();
    adam.update('mask', mask.raw, mask.toRaw(gMask), cfg.lr);
    adam.update('pattern', pattern.raw, pattern.toRaw(gPattern), cfg.lr);
    mask.refresh();
    pattern.refresh();
    return { hits: countHits(r.logits, n, classes, target), l1 };
  };
  const run = await runSearch(cfg, img.n, step, () => ({ mask: mask.value.slice(), pattern: pattern.value.slice() }), onEpoch);
  const kept = run.best ?? run.last;
  // The kept trigger on the scan images of other classes.
  let hits = 0, count = 0;
  for (let from = 0; from < img.n; from += cfg.batch) {
    const n = Math.min(cfg.batch, img.n - from);
    const [hit, cnt] = await successOf(logitsModel, blend(img, from, n, kept.mask, kept.pattern), [n, c, h, w], target, classes, (i) => img.labels[from + i] !== target);
    hits += hit;
    count += cnt;
  }
  return {
    target, mask: kept.mask, pattern: kept.pattern, maskL1: kept.mask.reduce((a, v) => a + v, 0), reached: run.best !== undefined,
    triggerSuccess: count ? hits / count : 0, epochs: run.epochs, finalCost: run.finalCost,
  };
}
