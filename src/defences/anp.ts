/**
 * `anp`: Adversarial Neuron Pruning (Wu & Wang, NeurIPS 2021; the authors' optimize_mask_cifar.py and
 * prune_neuron_cifar.py). Every BatchNorm channel (restored ones included) gets a mask m in [0, 1] on its
 * scale and multiplicative noise on scale and shift: scale * (m + d), shift * (1 + x). Per batch (sampled
 * with replacement, crop + flip, BatchNorm on batch statistics as the authors' model.train()):
 *   - the noise starts uniform in [-eps, eps] (with eps 0 there is no noise and no perturbed pass, as in the
 *     authors' code) and takes `steps` sign-gradient ascent steps of eps / steps on
 *     the cross-entropy (unclipped, as the authors' code);
 *   - the masks take one SGD step (momentum 0.9) on alpha * CE(clean) + (1 - alpha) * CE(perturbed), then are
 *     clipped to [0, 1].
 * Then channels are pruned: those with m <= --prune-threshold (default 0.2), or by --prune-by
 * clean-acc:<points>, the largest threshold (in steps of 0.05) whose accuracy on a held-back 10 % of --data
 * stays within that many points of the unpruned model's (never the triggered data). A pruned channel's
 * BatchNorm scale becomes 0 and its shift stays; a restored BatchNorm folds back into its conv as zero
 * weights with the shift as the bias. The graph stays the same.
 */
import { augmentBatch, normalizeBatch } from '../data/augment.js';
import { selectRows, type Dataset } from '../data/dataset.js';
import { Rng } from '../data/random.js';
import { BadInputError } from '../errors.js';
import { TrainableModel } from '../import/trainable-model.js';
import { createEngine } from '../training/create-engine.js';
import type { Batch, BatchNormMask, GradientSpec, StepResult, TrainingEngine } from '../training/engine.js';
import { crossEntropyTerm } from '../training/loss/cross-entropy.js';
import { ParameterStore } from '../training/parameter-store.js';
import { nhwcToNchw } from '../verify/onnx-runtime.js';
import { checkCommon, nonNegative } from './checks.js';
import type { Defence, DefenceContext, TrainedCopy } from './defence.js';
import { CROP_FLIP } from './ft-sam.js';
import { finishMasks, restoreMasks, saveMasks } from './mask-checkpoint.js';
import { describePruneRule, parsePruneBy, pruneByMasks, splitForPruning, type Pruning, type PruneRule } from './mask-pruning.js';
import type { MethodOptions } from './method-options.js';

export interface AnpOptions {
  iterations: number;
  batch: number;
  eps: number;
  steps: number;
  alpha: number;
  maskLr: number;
  prune: PruneRule;
}

/** ANP's engine: the cross-entropy's gradients with respect to the BatchNorm masks and noise only, BatchNorm on
 * batch statistics as the authors' model.train(); the weights never change, so onnxruntime gets them as constants. */
export function anpEngineSpec(classes: number): GradientSpec {
  return { terms: [crossEntropyTerm(classes)], params: false, constantParams: true, masks: true, batchNorm: 'train' };
}

/** One iteration's noise start: uniform in [-eps, eps], per BatchNorm its scale noise then its shift noise
 * (the order fixtures/make_anp_reference.py replays to draw the same start). */
export function drawNoise(bns: BatchNormMask[], eps: number, rng: Rng): Map<string, Float32Array> {
  const noise = new Map<string, Float32Array>();
  for (const m of bns) {
    for (const name of [m.noiseW, m.noiseB]) noise.set(name, Float32Array.from({ length: m.channels }, () => (2 * rng.next() - 1) * eps));
  }
  return noise;
}

/** The noise's `steps` sign-gradient ascent steps of eps / steps on the cross-entropy at `values` (masks and
 * noise), in place and unclipped as the authors' code. Returns each pass's cross-entropy. */
export async function ascendNoise(engine: TrainingEngine, batch: Batch, values: Map<string, Float32Array>, r: Pick<AnpOptions, 'eps' | 'steps'>): Promise<number[]> {
  const ces: number[] = [];
  for (let s = 0; s < r.steps; s++) {
    const g = await engine.gradients(batch, values);
    ces.push(g.total);
    for (const m of engine.masks) {
      for (const name of [m.noiseW, m.noiseB]) {
        const v = values.get(name)!, gr = g.grads.get(name)!;
        for (let k = 0; k < v.length; k++) v[k] = v[k]! + (r.eps / r.steps) * Math.sign(gr[k]!);
      }
    }
  }
  return ces;
}

/** The masks' step: SGD with momentum 0.9 on alpha * CE(clean) + (1 - alpha) * CE(perturbed, at `values`), then
 * the clip to [0, 1]; masks and momentum change in place. Returns both passes and the combined gradient (which
 * tests/anp.test.ts compares). */
export async function maskStep(
  engine: TrainingEngine, batch: Batch, masks: Map<string, Float32Array>, momentum: Map<string, Float32Array>, values: ReadonlyMap<string, Float32Array> | undefined,
  r: Pick<AnpOptions, 'alpha' | 'maskLr'>,
): Promise<{ clean: StepResult; perturbed?: StepResult; grads: Map<string, Float32Array> }> {
  // No noise (--anp-eps 0): the authors' loss_rob is 0, so the masks follow alpha * CE(clean) alone.
  const perturbed = values ? await engine.gradients(batch, values) : undefined;
  const clean = await engine.gradients(batch, new Map(masks));
  const grads = new Map<string, Float32Array>();
  for (const m of engine.masks) {
    const w = masks.get(m.mask)!, buf = momentum.get(m.mask)!, grad = new Float32Array(m.channels);
    const gRob = perturbed?.grads.get(m.mask), gNat = clean.grads.get(m.mask)!;
    for (let k = 0; k < w.length; k++) {
      const g = r.alpha * gNat[k]! + (gRob ? (1 - r.alpha) * gRob[k]! : 0);
      grad[k] = g;
      buf[k] = 0.9 * buf[k]! + g; // torch SGD momentum, no dampening
      w[k] = Math.min(1, Math.max(0, w[k]! - r.maskLr * buf[k]!));
    }
    grads.set(m.mask, grad);
  }
  return { clean, perturbed, grads };
}

/** One iteration's batch, as the authors' sampler: `n` images drawn with replacement, cropped and flipped, normalised. */
export function drawBatch(data: Dataset, n: number, rng: Rng, mean?: number[], std?: number[]): Batch {
  const { x, labels } = selectRows(data, Int32Array.from({ length: n }, () => rng.int(data.n)));
  const nhwc = normalizeBatch(augmentBatch(x, n, data.h, data.w, data.c, CROP_FLIP, rng), data.c, mean, std);
  return { nhwc, nchw: nhwcToNchw(nhwc, n, data.h, data.w, data.c), labels, n };
}

/** Iterations per entry of the loss history, and per checkpoint. */
export const ANP_ROUND = 100;

async function anpTrain(ctx: DefenceContext, r: AnpOptions): Promise<{ copy: TrainedCopy; pruning: Pruning }> {
  const model = new TrainableModel(ctx.source, ctx.tapNames);
  const restored = ctx.restore(model);
  const store = new ParameterStore(model);
  const { train, held } = splitForPruning(ctx.data, r.prune, ctx.seed);
  const engine = await createEngine(model, store, anpEngineSpec(model.numClasses),
    { choice: ctx.engine, method: 'anp', onLog: ctx.log, preferTfjs: ctx.preferTfjs, alone: true });
  const rng = new Rng(ctx.seed + 2);
  const masks = new Map(engine.masks.map((m) => [m.mask, new Float32Array(m.channels).fill(1)]));
  const momentum = new Map(engine.masks.map((m) => [m.mask, new Float32Array(m.channels)]));
  // Checkpoints (--checkpoint, mask-checkpoint.ts): after every round of iterations, and the masks once done.
  const progress = restoreMasks(ctx, 'anp', masks, momentum);
  const losses = progress.history;
  if (progress.rngState !== undefined) rng.state = progress.rngState;
  const start = progress.finished ? r.iterations : Math.min(r.iterations, progress.done * ANP_ROUND);
  let t0 = performance.now(), sumClean = 0, sumPerturbed = 0, count = 0;
  if (start < r.iterations) ctx.log(`anp: ${r.iterations} iterations of ${r.batch} on ${train.n} images, ${engine.masks.reduce((a, m) => a + m.channels, 0)} BatchNorm channels`);
  try {
    for (let it = start; it < r.iterations; it++) {
      ctx.signal?.throwIfAborted();
      const batch = drawBatch(train, r.batch, rng, ctx.mean, ctx.std);
      // The noise start, its ascent and the masks' step are apart so that tests/anp.test.ts can hold each to PyTorch.
      // As the authors' code: with eps 0 no noise is drawn, ascended or evaluated.
      const values = r.eps > 0 ? new Map<string, Float32Array>([...masks, ...drawNoise(engine.masks, r.eps, rng)]) : undefined;
      if (values) await ascendNoise(engine, batch, values, r);
      const { clean, perturbed } = await maskStep(engine, batch, masks, momentum, values, r);
      sumClean += clean.total;
      sumPerturbed += perturbed?.total ?? 0;
      count++;
      if ((it + 1) % ANP_ROUND === 0 || it + 1 === r.iterations) {
        const seconds = (performance.now() - t0) / 1000;
        const ce = sumClean / count, perturbedCe = sumPerturbed / count, loss = r.alpha * ce + (1 - r.alpha) * perturbedCe;
        losses.push({ epoch: losses.length, lr: r.maskLr, loss, ce, at: [], terms: { ce, perturbed_ce: perturbedCe }, seconds, images: count * r.batch });
        ctx.onProgress?.({ phase: 'anp', epoch: losses.length - 1, epochs: Math.ceil(r.iterations / ANP_ROUND), done: it + 1, total: r.iterations, loss, imagesPerSecond: (count * r.batch) / Math.max(seconds, 1e-9) });
        saveMasks(ctx, progress.key, losses.length, rng.state, masks, momentum);
        t0 = performance.now();
        sumClean = 0;
        sumPerturbed = 0;
        count = 0;
      }
    }
    if (!progress.finished) finishMasks(ctx, progress.key, masks);
  } finally {
    await engine.dispose();
  }

  const pruning = pruneByMasks('anp', model, store, engine.masks, masks, r.prune, { held, mean: ctx.mean, std: ctx.std, log: ctx.log });
  return { copy: { model, store, losses: { anp: losses }, engines: { anp: progress.finished ? 'checkpoint' : engine.name }, restored }, pruning };
}

export const anp: Defence<AnpOptions> = {
  name: 'anp',
  summary: 'adversarial neuron pruning (Wu & Wang 2021)',
  options: ['anpEps', 'anpSteps', 'anpAlpha', 'maskLr', 'anpIterations', 'pruneThreshold', 'pruneBy', 'baseline'],
  resolve(o: MethodOptions): AnpOptions {
    checkCommon(o);
    if (o.epochs !== undefined) throw new BadInputError('--epochs does not apply to --method anp (it runs --anp-iterations mask updates)');
    if (o.lr !== undefined) throw new BadInputError('--lr does not apply to --method anp (the masks\' learning rate is --mask-lr)');
    for (const [v, flag] of [[o.anpEps, '--anp-eps'], [o.anpAlpha, '--anp-alpha'], [o.maskLr, '--mask-lr'], [o.pruneThreshold, '--prune-threshold']] as const) nonNegative(v, flag);
    nonNegative(o.anpSteps, '--anp-steps', true);
    nonNegative(o.anpIterations, '--anp-iterations', true);
    if (o.anpAlpha !== undefined && o.anpAlpha > 1) throw new BadInputError(`--anp-alpha: must be in [0, 1] (got ${o.anpAlpha})`);
    if (o.pruneThreshold !== undefined && o.pruneBy !== undefined) throw new BadInputError('--prune-threshold and --prune-by: give one of them');
    return {
      iterations: o.anpIterations ?? 2000, batch: o.batch ?? 128, eps: o.anpEps ?? 0.4, steps: o.anpSteps ?? 1, alpha: o.anpAlpha ?? 0.2,
      maskLr: o.maskLr ?? 0.2, prune: o.pruneBy !== undefined ? parsePruneBy(o.pruneBy) : { kind: 'threshold', threshold: o.pruneThreshold ?? 0.2 },
    };
  },
  describe: (r) => ({
    iterations: r.iterations, batch: r.batch, anp_eps: r.eps, anp_steps: r.steps, anp_alpha: r.alpha, mask_lr: r.maskLr, mask_momentum: 0.9,
    prune: describePruneRule(r.prune),
    augmentation: 'RandomCrop(pad 4) + HorizontalFlip', batchnorm: 'batch statistics while the masks train',
  }),
  provenance: 'adversarial neuron pruning',
  stateFactor: () => 0,
  onnxruntimeOnly: 'BatchNorm masks',
  masksBatchNorm: true,
  train: async (ctx, r) => (await anpTrain(ctx, r)).copy,
  async run(ctx, r) {
    const { copy, pruning } = await anpTrain(ctx, r);
    return { ...copy, parameters: { ...anp.describe(r), pruned_threshold: pruning.threshold, pruned_channels: pruning.pruned, batchnorm_channels: pruning.channels } };
  },
};
