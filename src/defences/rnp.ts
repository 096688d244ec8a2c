/**
 * `rnp`: Reconstructive Neuron Pruning (Li et al., ICML 2023, by NAD's first author; the authors' main.py in
 * bboylyg/RNP). Three steps on the clean data, crop + flip, BatchNorm on batch statistics (model.train()):
 *   1. unlearning: gradient ascent on the cross-entropy, SGD lr 0.01 (x0.1 from epoch 10), momentum 0.9,
 *      weight decay 5e-4, batch 128, stopped after the first epoch whose training accuracy is at or below
 *      --unlearn-until (default 0.2), at most 20 epochs (the authors allow a 21st at lr 1e-4);
 *   2. recovering: a mask on each BatchNorm scale of the unlearned model (from 1), SGD lr 0.2 with momentum
 *      0.9 on 0.2 x the cross-entropy, clipped to [0, 1] after every step, 20 epochs of 128;
 *   3. pruning the original model (not the unlearned one) by those masks, as ANP prunes (mask-pruning.ts):
 *      channels that the recovery left near 0 are the ones the unlearning could not do without.
 * The authors sweep the pruning threshold against the triggered test set; here it is --prune-threshold
 * (default 0.2) or --prune-by clean-acc:<points> on a held-back 10 % of --data, never triggered data.
 */
import { TrainableModel } from '../import/trainable-model.js';
import { Rng } from '../data/random.js';
import { BadInputError } from '../errors.js';
import { createEngine } from '../training/create-engine.js';
import type { TrainingEngine } from '../training/engine.js';
import { runEpochs, type BatchStep } from '../training/epoch-loop.js';
import { crossEntropyTerm } from '../training/loss/cross-entropy.js';
import { Sgd, type SgdConfig } from '../training/optimizers/sgd.js';
import { ParameterStore } from '../training/parameter-store.js';
import { describeSchedule, type LrSchedule } from '../training/schedule.js';
import { argmaxRows } from '../verify/predictions.js';
import { anpEngineSpec, maskStep } from './anp.js';
import { checkCommon, nonNegative } from './checks.js';
import type { Defence, DefenceContext, TrainedCopy } from './defence.js';
import { CROP_FLIP } from './ft-sam.js';
import { describePruneRule, parsePruneBy, pruneByMasks, splitForPruning, type Pruning, type PruneRule } from './mask-pruning.js';
import type { MethodOptions } from './method-options.js';
import { trainCopy } from './train-copy.js';
import { finishMasks, restoreMasks, saveMasks } from './mask-checkpoint.js';

export interface RnpOptions {
  /** Unlearning: at most this many epochs, stopped once the training accuracy is at or below `until`. */
  unlearnEpochs: number;
  until: number;
  schedule: LrSchedule & { kind: 'step' };
  sgd: SgdConfig;
  /** Recovering: epochs, the masks' learning rate and the weight of their cross-entropy. */
  epochs: number;
  maskLr: number;
  alpha: number;
  batch: number;
  prune: PruneRule;
}

/** The fraction of a batch whose logits (N x classes) rank its label first. */
export function batchAccuracy(logits: Float32Array, labels: Int32Array, classes: number): number {
  const pred = argmaxRows(logits, labels.length, classes);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) correct++;
  return correct / Math.max(1, labels.length);
}

/**
 * One unlearning step: the cross-entropy's gradient at the store's values, running statistics, and the
 * optimiser's step on the negated gradient (the authors' (-loss).backward(); weight decay still pulls the
 * weights toward 0). Returns the cross-entropy before the step and the batch's accuracy as the term `acc`.
 */
export function ascentStep(engine: TrainingEngine, store: ParameterStore, opt: Sgd, classes: number): BatchStep {
  return async (batch, lr) => {
    const g = await engine.gradients(batch, store.values());
    store.applyBatchStats(g.stats);
    for (const v of g.grads.values()) for (let i = 0; i < v.length; i++) v[i] = -v[i]!;
    opt.step(store, g.grads, lr);
    return { total: g.total, terms: { ...g.terms, acc: batchAccuracy(g.logits!, batch.labels, classes) } };
  };
}

async function rnpTrain(ctx: DefenceContext, r: RnpOptions): Promise<{ copy: TrainedCopy; pruning: Pruning }> {
  const { train, held } = splitForPruning(ctx.data, r.prune, ctx.seed);
  const local: DefenceContext = { ...ctx, data: train };

  // 1. Unlearning, as a phase (checkpointed, restarted at a tenth of a diverging default rate).
  const unlearned = await trainCopy(local, { name: 'unlearn', seedOffset: 2 }, (model, store) => {
    const opt = new Sgd(r.sgd);
    return {
      title: 'unlearning', optimizer: opt, gradients: { terms: [crossEntropyTerm(model.numClasses)], logits: true },
      step: (engine) => ascentStep(engine, store, opt, model.numClasses), epochs: r.unlearnEpochs, batch: r.batch, schedule: r.schedule, augment: CROP_FLIP,
      stopAfter: (e) => (e.terms.acc ?? 1) <= r.until,
    };
  });
  const history = unlearned.losses.unlearn ?? [];
  const reached = history[history.length - 1]?.terms.acc;
  ctx.log(`rnp: unlearned for ${history.length} epochs, training accuracy ${reached === undefined ? '?' : (100 * reached).toFixed(1)} %`);
  if (reached !== undefined && reached > r.until) ctx.warn?.(`rnp: unlearning ended at training accuracy ${(100 * reached).toFixed(1)} % after ${history.length} epochs, above --unlearn-until ${r.until}`);

  // 2. Recovering: masks on the unlearned model's BatchNorm scales; its weights are constants.
  const engine = await createEngine(unlearned.model, unlearned.store, anpEngineSpec(unlearned.model.numClasses),
    { choice: ctx.engine, method: 'rnp', onLog: ctx.log, preferTfjs: ctx.preferTfjs, alone: true });
  const masks = new Map(engine.masks.map((m) => [m.mask, new Float32Array(m.channels).fill(1)]));
  const momentum = new Map(engine.masks.map((m) => [m.mask, new Float32Array(m.channels)]));
  // Checkpoints (--checkpoint, mask-checkpoint.ts): after every epoch, and the masks once recovered.
  const progress = restoreMasks(ctx, 'recover', masks, momentum);
  const rng = new Rng(ctx.seed + 3);
  if (progress.rngState !== undefined) rng.state = progress.rngState;
  const recovered = progress.history;
  try {
    if (!progress.finished) {
      await runEpochs(train, {
        phase: 'recover', title: 'mask recovering', epochs: r.epochs, batch: r.batch, schedule: { kind: 'constant', lr: r.maskLr }, augment: CROP_FLIP,
        mean: ctx.mean, std: ctx.std, onProgress: ctx.onProgress, signal: ctx.signal, startEpoch: progress.done, history: recovered,
        onEpochEnd: (done) => saveMasks(ctx, progress.key, done, rng.state, masks, momentum),
        step: async (batch) => {
          const { clean } = await maskStep(engine, batch, masks, momentum, undefined, r);
          return { total: clean.total, terms: clean.terms };
        },
      }, rng);
      finishMasks(ctx, progress.key, masks);
    }
  } finally {
    await engine.dispose();
    unlearned.model.dispose();
  }

  // 3. Pruning the original model.
  const model = new TrainableModel(ctx.source, ctx.tapNames);
  const restored = ctx.restore(model);
  const store = new ParameterStore(model);
  const pruning = pruneByMasks('rnp', model, store, engine.masks, masks, r.prune, { held, mean: ctx.mean, std: ctx.std, log: ctx.log });
  return {
    copy: { model, store, losses: { unlearn: history, recover: recovered }, engines: { unlearn: unlearned.engines.unlearn!, recover: progress.finished ? 'checkpoint' : engine.name }, restored },
    pruning,
  };
}

export const rnp: Defence<RnpOptions> = {
  name: 'rnp',
  summary: 'reconstructive neuron pruning (Li et al. 2023): unlearn, recover channel masks, prune',
  options: ['unlearnUntil', 'maskLr', 'pruneThreshold', 'pruneBy', 'baseline'],
  resolve(o: MethodOptions): RnpOptions {
    checkCommon(o);
    nonNegative(o.maskLr, '--mask-lr');
    nonNegative(o.pruneThreshold, '--prune-threshold');
    if (o.unlearnUntil !== undefined && !(o.unlearnUntil > 0 && o.unlearnUntil < 1)) throw new BadInputError(`--unlearn-until: must be a training accuracy in (0, 1) (got ${o.unlearnUntil})`);
    if (o.pruneThreshold !== undefined && o.pruneBy !== undefined) throw new BadInputError('--prune-threshold and --prune-by: give one of them');
    return {
      unlearnEpochs: 20, until: o.unlearnUntil ?? 0.2,
      schedule: { kind: 'step', lr: o.lr ?? 0.01, dropEpoch: 10, factor: 0.1 },
      sgd: { momentum: o.momentum ?? 0.9, nesterov: false, weightDecay: o.weightDecay ?? 5e-4 },
      epochs: o.epochs ?? 20, maskLr: o.maskLr ?? 0.2, alpha: 0.2, batch: o.batch ?? 128,
      prune: o.pruneBy !== undefined ? parsePruneBy(o.pruneBy) : { kind: 'threshold', threshold: o.pruneThreshold ?? 0.2 },
    };
  },
  describe: (r) => ({
    unlearn_lr: describeSchedule(r.schedule), unlearn_until: r.until, unlearn_max_epochs: r.unlearnEpochs, momentum: r.sgd.momentum, weight_decay: r.sgd.weightDecay,
    recover_epochs: r.epochs, mask_lr: r.maskLr, mask_momentum: 0.9, mask_loss_weight: r.alpha, batch: r.batch, prune: describePruneRule(r.prune),
    augmentation: 'RandomCrop(pad 4) + HorizontalFlip', batchnorm: 'batch statistics while unlearning and recovering',
  }),
  provenance: 'reconstructive neuron pruning',
  stateFactor: (r) => (r.sgd.momentum !== 0 ? 1 : 0),
  onnxruntimeOnly: 'BatchNorm masks',
  masksBatchNorm: true,
  train: async (ctx, r) => (await rnpTrain(ctx, r)).copy,
  async run(ctx, r) {
    const { copy, pruning } = await rnpTrain(ctx, r);
    const unlearned = copy.losses.unlearn!;
    const last = unlearned[unlearned.length - 1];
    return {
      ...copy,
      parameters: {
        ...rnp.describe(r), unlearned_epochs: unlearned.length, unlearned_train_acc: last?.terms.acc ?? null,
        pruned_threshold: pruning.threshold, pruned_channels: pruning.pruned, batchnorm_channels: pruning.channels,
      },
    };
  },
};
