/**
 * `nad`, Neural Attention Distillation (Li et al., ICLR 2021), as the authors' code runs it: a teacher
 * (the model fine-tuned on the clean data by --teacher-method, ft by default, or a given ONNX file), then
 * the backdoored model again with CE + sum_k beta_k * MSE(attention maps) towards the frozen teacher's
 * taps. Defaults: the teacher 10 epochs, distillation 20, SGD lr 0.1 (x0.1 from epoch 2) Nesterov momentum
 * 0.9 weight decay 1e-4, batch 64, crop + flip + cutout, p 2, beta 500 for the first tap and 1000 after.
 */
import { NAD_AUGMENT } from '../data/augment.js';
import { imageSize } from '../data/dataset.js';
import { toModelInput } from '../data/model-input.js';
import { BadInputError, ExitCode, NadError } from '../errors.js';
import { modelBytes } from '../export/write-model.js';
import { TrainableModel } from '../import/trainable-model.js';
import { attentionExponent } from '../training/attention.js';
import { FrozenModel } from '../training/frozen-model.js';
import { allFiniteWithin } from '../training/finite-values.js';
import { attentionDistillationTerm, teacherTapInput } from '../training/loss/attention-distillation.js';
import { crossEntropyTerm } from '../training/loss/cross-entropy.js';
import { Sgd } from '../training/optimizers/sgd.js';
import type { ParameterStore } from '../training/parameter-store.js';
import { plainStep } from '../training/steps.js';
import { probeSession } from '../verify/onnx-runtime.js';
import type { Defence, DefenceContext, DefenceResult, Intermediate } from './defence.js';
import { nonNegative, positive } from './checks.js';
import { ft, type FtOptions } from './ft.js';
import type { MethodOptions } from './method-options.js';
import { trainCopy } from './train-copy.js';
import { teacherDefence } from './teacher-methods.js';

/** The rule for beta with any number of taps: 500 for the first tap, 1000 for the others (3 taps: 500, 1000, 1000). */
export function defaultBetas(taps: number): number[] {
  return Array.from({ length: taps }, (_, i) => (i === 0 ? 500 : 1000));
}

/** Values beyond 1e18 overflow float32 when the attention map squares them, so they count as non-finite. */
const TAP_LIMIT = 1e18;
const overflows = (taps: Float32Array[]) => taps.some((t) => !allFiniteWithin(t, TAP_LIMIT));
/** How many clean images the trained teacher's taps are checked on, before the distillation needs them. */
const TAP_CHECK_IMAGES = 512;

/**
 * Why a trained teacher cannot serve, if it cannot: its taps on the first clean images (unaugmented) are
 * not finite or overflow when squared. Said as the teacher phase ends, this sends that phase back to a
 * restart at a tenth of a default learning rate; the distillation would only stop on it.
 */
export async function teacherTapsOverflow(ctx: DefenceContext, model: TrainableModel, store: ParameterStore, tapNames: string[]): Promise<string | undefined> {
  store.writeTo(model);
  const frozen = await FrozenModel.create(modelBytes(ctx.source, model.exportWeights(), undefined, tapNames), 'teacher', tapNames);
  try {
    const d = ctx.data, size = imageSize(d), end = Math.min(d.n, TAP_CHECK_IMAGES);
    for (let s = 0; s < end; s += 128) {
      const n = Math.min(128, end - s);
      const nchw = toModelInput(d.x.subarray(s * size, (s + n) * size), n, d.h, d.w, d.c, ctx.mean, ctx.std);
      if (overflows(await frozen.run(nchw, [n, d.c, d.h, d.w]))) return 'its taps are no longer finite, or overflow when squared, after the last update';
    }
    return undefined;
  } finally {
    await frozen.release();
  }
}

export interface NadOptions extends FtOptions {
  teacher?: string;
  teacherMethod: string;
  teacherEpochs: number;
  betas?: number[];
  p: number;
  attention: string;
  /** The options as given, for the teacher method. */
  given: MethodOptions;
}

export const nad: Defence<NadOptions> = {
  name: 'nad',
  summary: 'Neural Attention Distillation (Li et al. 2021)',
  options: ['teacher', 'teacherMethod', 'teacherEpochs', 'betas', 'p', 'attention', 'lrDropEpoch'],
  resolve(o: MethodOptions): NadOptions {
    positive(o.p, '--p');
    nonNegative(o.teacherEpochs, '--teacher-epochs', true);
    if (o.betas?.some((b) => !Number.isFinite(b) || b < 0)) throw new BadInputError('--betas: must be non-negative numbers');
    const teacherMethod = o.teacherMethod ?? 'ft';
    if (o.teacher && o.teacherMethod) throw new BadInputError('--teacher and --teacher-method exclude each other (a given teacher is not trained)');
    if (teacherMethod === 'nad') throw new BadInputError('--teacher-method: nad cannot teach itself (use ft, ft-sam, fst or sau)');
    teacherDefence(teacherMethod);
    return {
      ...ft.resolve({ ...o, epochs: o.epochs ?? 20 }),
      teacher: o.teacher, teacherMethod, teacherEpochs: o.teacherEpochs ?? 10, betas: o.betas,
      p: attentionExponent(o.attention ?? 'pow', o.p ?? 2), attention: o.attention ?? 'pow', given: o,
    };
  },
  describe: (r) => ({
    ...ft.describe(r), teacher: r.teacher ?? null, teacher_method: r.teacher ? null : r.teacherMethod, teacher_epochs: r.teacher ? 0 : r.teacherEpochs,
    betas: r.betas ?? null, p: r.p, attention: r.attention,
  }),
  stateFactor: (r) => ft.stateFactor(r),
  frozenModels: 1,
  provenance: 'neural-attention-distillation',
  checkModel(r, model, taps) {
    if (taps.length === 0) throw new BadInputError(`${model}: no residual-group taps found; name them with --taps`);
    if (r.betas && r.betas.length !== taps.length) {
      throw new BadInputError(`--betas: ${r.betas.length} values for ${taps.length} taps (${taps.map((t) => t.shape.join('x')).join(', ')})`);
    }
  },
  async train() {
    throw new Error('nad trains through run()');
  },
  async run(ctx, r): Promise<DefenceResult> {
    // The taps were found, and checked against --betas by checkModel, when the pipeline loaded the model.
    const taps = ctx.taps;
    const betas = r.betas ?? defaultBetas(taps.length);
    const tapNames = taps.map((t) => t.name);
    const losses: DefenceResult['losses'] = { teacher: [] };
    const engines: DefenceResult['engines'] = { teacher: 'none' };

    // The teacher: a given ONNX file, or the backdoored model trained by the teacher method.
    let teacher: Intermediate;
    if (r.teacher) {
      const tm = TrainableModel.fromFile(r.teacher);
      if (tm.taps.length !== taps.length || tm.taps.some((tp, i) => tp.shape[1] !== taps[i]!.shape[1] || tp.shape[2] !== taps[i]!.shape[2])) {
        throw new BadInputError(`--teacher ${r.teacher}: its taps (${tm.taps.map((x) => x.shape.slice(1).join('x')).join(', ')}) do not match the student's spatial sizes (${taps.map((x) => x.shape.slice(1).join('x')).join(', ')})`);
      }
      const tt = tm.taps.map((x) => x.name);
      teacher = { label: 'teacher', method: 'given', bytes: modelBytes(tm.source), tapBytes: modelBytes(tm.source, undefined, undefined, tt), taps: tt, path: r.teacher };
      probeSession(teacher.bytes, r.teacher);
      tm.dispose();
    } else if (r.teacherEpochs === 0) {
      // No fine-tuning: the backdoored model is its own teacher.
      teacher = { label: 'teacher', method: r.teacherMethod, bytes: modelBytes(ctx.source), tapBytes: modelBytes(ctx.source, undefined, undefined, tapNames), taps: tapNames };
    } else {
      const def = teacherDefence(r.teacherMethod);
      const g = r.given;
      // An ft teacher takes NAD's optimiser flags (the authors train both phases alike); another method its own defaults.
      const opts = r.teacherMethod === 'ft'
        ? ft.resolve({ epochs: r.teacherEpochs, lr: g.lr, lrDropEpoch: g.lrDropEpoch, batch: g.batch, momentum: g.momentum, weightDecay: g.weightDecay })
        : def.resolve({ epochs: r.teacherEpochs });
      const copy = await def.train(ctx, opts, { name: 'teacher', seedOffset: 1, verify: (model, store) => teacherTapsOverflow(ctx, model, store, tapNames) });
      copy.store.writeTo(copy.model);
      const weights = copy.model.exportWeights();
      copy.model.dispose();
      Object.assign(losses, copy.losses);
      Object.assign(engines, copy.engines);
      teacher = { label: 'teacher', method: r.teacherMethod, bytes: modelBytes(ctx.source, weights), tapBytes: modelBytes(ctx.source, weights, undefined, tapNames), taps: tapNames };
    }

    // Distillation: the backdoored model again, CE + attention terms towards the frozen teacher's taps.
    const frozen = await FrozenModel.create(teacher.tapBytes, teacher.path ?? 'teacher', teacher.taps);
    try {
      const copy = await trainCopy(ctx, { name: 'nad', seedOffset: 2 }, (model, store) => {
        const opt = new Sgd(r.sgd);
        const terms = [crossEntropyTerm(model.numClasses), ...model.taps.map((t, k) => attentionDistillationTerm(k, t.name, t.shape, betas[k]!, r.p))];
        ctx.log(`nad: betas ${betas.join(',')}, p ${r.p}`);
        return {
          title: 'distillation', optimizer: opt, gradients: { terms },
          extras: async (nchw, dims) => {
            const taps = await frozen.run(nchw, dims);
            if (overflows(taps)) {
              // Finite weights whose forward overflows: the teacher's own training went too far, or a given teacher is damaged.
              if (r.teacher) throw new BadInputError(`--teacher ${r.teacher}: computes NaN, infinite or overflowing (above 1e18) values at its taps; its weights are damaged`);
              const what = r.teacherMethod === 'ft' ? 'teacher fine-tuning' : `the teacher's ${r.teacherMethod}`;
              throw new NadError(`${what} diverged at epoch ${r.teacherEpochs} (its taps are no longer finite, or overflow when squared, after the last update); try a smaller learning rate, e.g. --lr ${r.schedule.lr / 10}`, ExitCode.internal);
            }
            return Object.fromEntries(taps.map((t, k) => [teacherTapInput(k), t]));
          },
          step: (engine) => plainStep(engine, store, opt), epochs: r.epochs, batch: r.batch, schedule: r.schedule, augment: NAD_AUGMENT,
        };
      });
      return {
        ...copy, losses: { ...losses, ...copy.losses }, engines: { ...engines, ...copy.engines },
        parameters: { ...nad.describe(r), betas }, teacher,
      };
    } finally {
      await frozen.release();
    }
  },
};
