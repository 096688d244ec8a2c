/**
 * `sau`: Shared Adversarial Unlearning (Wei et al., NeurIPS 2023; BackdoorBench defense/sau.py and its
 * CIFAR-10 config). A frozen copy of the original model stays beside the model being trained; per batch:
 *   1. shared adversarial examples x + d (shared-pgd.ts: L-inf bound --pgd-eps 0.2 in pixel space, --pgd-steps
 *      5 sign steps of 0.2 from +eps, beta1 0.01, beta2 1);
 *   2. one Adam step (lr 1e-4, betas 0.9 / 0.999, no weight decay, constant: the authors' scheduler is never
 *      stepped) on CE(clean) + the shared unlearning loss on the perturbed images that fooled the original
 *      model (away from its clean label and from the true one), both halves in one pass.
 * Both models stay in eval mode (BatchNorm on running statistics, train_mode off) and there is no
 * augmentation, as the authors' code. The paper runs 100 epochs; each costs about a dozen fine-tuning
 * epochs here, so the default is 10, provisional until the epoch curve in bench/README.md is measured.
 */
import { BadInputError } from '../errors.js';
import { TrainableModel } from '../import/trainable-model.js';
import { createEngine } from '../training/create-engine.js';
import type { Batch, GradientSpec, TrainingEngine } from '../training/engine.js';
import type { BatchStep } from '../training/epoch-loop.js';
import { sharedUnlearningTerm } from '../training/loss/shared-unlearning.js';
import { targetCrossEntropyTerm } from '../training/loss/target-cross-entropy.js';
import { Adam } from '../training/optimizers/adam.js';
import { ParameterStore } from '../training/parameter-store.js';
import { describeSchedule, type LrSchedule } from '../training/schedule.js';
import { checkCommon, positive } from './checks.js';
import type { Defence, DefenceContext } from './defence.js';
import type { MethodOptions } from './method-options.js';
import { applyDelta, logitsAt, sharedPgd, sharedPgdTerms, type PgdEngines, type SharedPgdConfig } from './shared-pgd.js';
import { trainCopy } from './train-copy.js';
import { argmaxRows } from '../verify/predictions.js';

export interface SauOptions {
  epochs: number;
  batch: number;
  schedule: LrSchedule;
  weightDecay: number;
  pgd: SharedPgdConfig;
  /** Weights of the clean loss and of the shared unlearning loss (the authors' lmd_1, lmd_3; lmd_2 is 0). */
  lambdaClean: number;
  lambdaShared: number;
}

export const SAU_DEFAULT_EPOCHS = 10;

const CLEAN_TARGETS = 'sau#clean_targets';
const SHARED_LABELS = 'sau#shared_labels';
const SHARED_WEIGHTS = 'sau#shared_weights';

/** The unlearning loss's terms, for a pass over [clean; perturbed] (2N images). */
function unlearningTerms(classes: number, r: Pick<SauOptions, 'lambdaClean' | 'lambdaShared'>) {
  return [targetCrossEntropyTerm('ce', CLEAN_TARGETS, classes, r.lambdaClean), sharedUnlearningTerm('shared', SHARED_LABELS, SHARED_WEIGHTS, classes, r.lambdaShared)];
}

/**
 * What each of SAU's passes computes: forward-only logits, PGD input gradients, and the unlearning pass
 * (eval-mode BatchNorm throughout). The frozen original's two passes hold its weights as constants.
 */
export function sauEngineSpecs(classes: number, r: Pick<SauOptions, 'pgd' | 'lambdaClean' | 'lambdaShared'>): {
  forward: GradientSpec; input: GradientSpec; referenceForward: GradientSpec; referenceInput: GradientSpec; unlearn: GradientSpec;
} {
  const forward: GradientSpec = { terms: [], params: false, batchNorm: 'eval', logits: true };
  const input: GradientSpec = { terms: sharedPgdTerms(classes, r.pgd), params: false, input: true, batchNorm: 'eval' };
  return {
    forward, input, referenceForward: { ...forward, constantParams: true }, referenceInput: { ...input, constantParams: true },
    unlearn: { terms: unlearningTerms(classes, r), batchNorm: 'eval' },
  };
}

/** The shared PGD's four engines: the model being cleaned and its frozen original, each forward and input gradient. */
export async function openPgdEngines(
  open: (m: TrainableModel, s: ParameterStore, spec: GradientSpec) => Promise<TrainingEngine>,
  cleaned: { model: TrainableModel; store: ParameterStore }, original: { model: TrainableModel; store: ParameterStore }, specs: ReturnType<typeof sauEngineSpecs>,
): Promise<PgdEngines> {
  return {
    model: await open(cleaned.model, cleaned.store, specs.forward), modelInput: await open(cleaned.model, cleaned.store, specs.input),
    reference: await open(original.model, original.store, specs.referenceForward), referenceInput: await open(original.model, original.store, specs.referenceInput),
  };
}

/**
 * The per-image inputs of the unlearning pass over [clean; perturbed]: rows are scaled by 2 so that the
 * engine's mean over 2N images is the authors' mean over N. Exported for the tests.
 */
export function unlearningInputs(labels: Int32Array, referenceClean: Int32Array, referencePerturbed: Int32Array, classes: number): Record<string, Float32Array> {
  const n = labels.length, k = classes;
  const clean = new Float32Array(2 * n * k), shared = new Float32Array(2 * n * k), w = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    clean[i * k + labels[i]!] = 2;
    const g = referencePerturbed[i]!;
    // Images whose perturbation fooled the original model: off the true label and off its clean label.
    if (g !== labels[i] && g !== referenceClean[i]) {
      shared[(n + i) * k + g] = 1;
      w[n + i] = 2;
    }
  }
  return { [CLEAN_TARGETS]: clean, [SHARED_LABELS]: shared, [SHARED_WEIGHTS]: w };
}

/** One SAU batch: the shared PGD, then the unlearning gradient at the store's values (the optimiser step is the caller's). */
export async function sauGradients(pgd: PgdEngines, unlearn: TrainingEngine, batch: Batch, dims: [number, number, number], classes: number, r: SauOptions, std?: number[]) {
  const found = await sharedPgd(pgd, batch, dims, classes, r.pgd, std);
  const n = batch.n;
  const x = applyDelta(batch.nchw, found.delta, dims[0], dims[1] * dims[2], std);
  const refPerturbed = await logitsAt(pgd.reference, batch, x);
  const both = new Float32Array(2 * batch.nchw.length);
  both.set(batch.nchw);
  both.set(x, batch.nchw.length);
  const extras = unlearningInputs(batch.labels, argmaxRows(found.referenceClean, n, classes), argmaxRows(refPerturbed, n, classes), classes);
  const step = await unlearn.gradients({ nchw: both, nhwc: new Float32Array(0), labels: new Int32Array(2 * n), n: 2 * n, extras }, new Map());
  return { step, pgd: found };
}

export const sau: Defence<SauOptions> = {
  name: 'sau',
  summary: 'shared adversarial unlearning (Wei et al. 2023)',
  options: ['pgdEps', 'pgdSteps', 'baseline'],
  resolve(o: MethodOptions): SauOptions {
    checkCommon(o);
    if (o.momentum !== undefined) throw new BadInputError('--momentum does not apply to --method sau (it trains with Adam)');
    if (o.pgdEps !== undefined && !(o.pgdEps > 0 && o.pgdEps <= 1)) throw new BadInputError(`--pgd-eps: must be in (0, 1], a bound in [0, 1] pixel units (got ${o.pgdEps})`);
    positive(o.pgdSteps, '--pgd-steps', true);
    const epochs = o.epochs ?? SAU_DEFAULT_EPOCHS;
    return {
      epochs, batch: o.batch ?? 256, schedule: { kind: 'constant', lr: o.lr ?? 1e-4 }, weightDecay: o.weightDecay ?? 0,
      pgd: { eps: o.pgdEps ?? 0.2, steps: o.pgdSteps ?? 5, stepSize: 0.2, beta1: 0.01, beta2: 1 },
      lambdaClean: 1, lambdaShared: 1,
    };
  },
  describe: (r) => ({
    epochs: r.epochs, lr: r.schedule.lr, schedule: describeSchedule(r.schedule), batch: r.batch, optimizer: 'adam', adam_betas: [0.9, 0.999],
    weight_decay: r.weightDecay, pgd_eps: r.pgd.eps, pgd_steps: r.pgd.steps, pgd_step_size: r.pgd.stepSize, pgd_init: '+eps', beta_1: r.pgd.beta1,
    beta_2: r.pgd.beta2, lambda_clean: r.lambdaClean, lambda_shared: r.lambdaShared, batchnorm: 'eval (running statistics)', augmentation: 'none',
  }),
  provenance: 'shared adversarial unlearning',
  // Adam's two moments.
  stateFactor: () => 2,
  // PGD runs both models forward and differentiates both with respect to the images, beside the training step.
  frozenModels: 2,
  inputGradientGraphs: 2,
  onnxruntimeOnly: 'gradients with respect to the input and eval-mode BatchNorm training',
  async train(ctx: DefenceContext, r: SauOptions, slot) {
    const opened: TrainingEngine[] = [];
    let reference: TrainableModel | undefined;
    try {
      return await trainCopy(ctx, slot, async (model, store) => {
        // The frozen original: its own copy with the BatchNorms restored the same way, never updated.
        reference = new TrainableModel(ctx.source, ctx.tapNames);
        ctx.restore(reference);
        const refStore = new ParameterStore(reference);
        const k = model.numClasses;
        const open = async (m: TrainableModel, s: ParameterStore, spec: GradientSpec) => {
          const e = await createEngine(m, s, spec, { choice: ctx.engine, method: 'sau', onLog: ctx.log, preferTfjs: false });
          opened.push(e);
          return e;
        };
        const specs = sauEngineSpecs(k, r);
        const pgd = await openPgdEngines(open, { model, store }, { model: reference, store: refStore }, specs);
        const opt = new Adam({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: r.weightDecay });
        const dims = model.inputShape as [number, number, number];
        const step = (engine: TrainingEngine): BatchStep => async (batch, lr) => {
          const { step: s, pgd: found } = await sauGradients(pgd, engine, batch, dims, k, r, ctx.std);
          opt.step(store, s.grads, lr);
          return { total: s.total, terms: { ...s.terms, shared_fraction: found.shared / batch.n } };
        };
        return {
          title: 'SAU', optimizer: opt, gradients: specs.unlearn, step,
          epochs: r.epochs, batch: r.batch, schedule: r.schedule, augment: { pad: 0, flip: false, cutout: 0 },
        };
      });
    } finally {
      for (const e of opened) await e.dispose();
      reference?.dispose();
    }
  },
};
