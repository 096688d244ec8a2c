/**
 * `clean`: Neural Attention Distillation end to end. Backdoored ONNX model + clean data in; cleaned ONNX
 * model (weights written back into the original graph) and a before / teacher / after report out. Every
 * reported metric is computed by onnxruntime-node on ONNX bytes.
 */
import { useBackend, type BackendChoice } from './backend/select-backend.js';
import type { Dataset } from './data/dataset.js';
import { NAD_AUGMENT } from './data/augment.js';
import { loadDataset } from './data/load-dataset.js';
import { Rng } from './data/random.js';
import { BadInputError, GateError, NadError, ExitCode } from './errors.js';
import { provenanceMetadata, TOOL_VERSION } from './export/provenance.js';
import { modelBytes, sha256, writeFileAtomic } from './export/write-model.js';
import { loadModel } from './import/load-model.js';
import { TrainableModel } from './import/trainable-model.js';
import { attentionExponent, type AttentionKind } from './nad/attention.js';
import { NAD_SCHEDULE, type LrSchedule } from './nad/schedule.js';
import { Sgd } from './nad/sgd.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointState } from './nad/checkpoint.js';
import { TeacherMaps } from './nad/teacher-maps.js';
import { autoEngine, checkEngineChoice, type EngineChoice } from './nad/engine.js';
import { trainEpochs, type EpochLoss, type EpochProgress } from './nad/train-epochs.js';
import * as tf from './tf.js';
import { der, evaluateMetrics, type Metrics } from './verify/metrics.js';
import { createSession, nhwcToNchw, probeSession, runModel } from './verify/onnx-runtime.js';
import { checkAttackOptions, parseTrigger, type Trigger } from './verify/triggers.js';
import { normalizeBatch } from './data/augment.js';
import { attentionFigure } from './report/attention-figure.js';
import { renderHtmlReport } from './report/html-report.js';

export interface CleanOptions {
  model: string;
  data: string;
  out: string;
  test?: string;
  trigger?: string;
  target?: number;
  poisoned?: string;
  teacher?: string;
  teacherEpochs?: number;
  epochs?: number;
  betas?: number[];
  p?: number;
  attention?: AttentionKind;
  lr?: number;
  lrDropEpoch?: number;
  batch?: number;
  ratio?: number;
  mean?: number[];
  std?: number[];
  seed?: number;
  backend?: BackendChoice;
  /** Training engine: onnxruntime (default where it covers the graph) or tfjs. */
  engine?: EngineChoice;
  taps?: string[];
  maxAccDrop?: number;
  maxAsr?: number;
  momentum?: number;
  weightDecay?: number;
  /** Save the state after every epoch here, and resume from it when rerun with the same arguments. */
  checkpoint?: string;
  /** Also write a self-contained HTML report to this path. */
  html?: string;
  /** Restore BatchNorms that PyTorch folded into convs, for training (default true). */
  bnRestore?: boolean;
  onProgress?: (p: EpochProgress) => void;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

export interface CleanReport {
  tool: { name: 'nad-onnx'; version: string };
  command: 'clean';
  model: { path: string; sha256: string };
  output: { path: string; sha256: string | null; written: boolean };
  parameters: Record<string, unknown>;
  seed: number;
  backend: { name: string; reason: string };
  /** The training engine of each phase ('none': a ready --teacher; 'checkpoint': a resumed run's finished teacher). */
  engine: { teacher: string; nad: string };
  data: { train: { source: string; n: number }; test: { source: string; n: number } };
  taps: { name: string; shape: number[] }[];
  losses: { teacher: EpochLoss[]; nad: EpochLoss[] };
  before: Metrics;
  teacher: Metrics;
  after: Metrics;
  der: { teacher: number | null; after: number | null };
  gates: { passed: boolean; failed: string[] };
  export_check: { max_abs_logit_diff: number };
  timings: Record<string, number>;
}

/** The rule for β with any number of taps: 500 for the first tap, 1000 for the others (3 taps: 500, 1000, 1000). */
export function defaultBetas(taps: number): number[] {
  return Array.from({ length: taps }, (_, i) => (i === 0 ? 500 : 1000));
}

function checkOptions(o: CleanOptions): void {
  const pos = (v: number | undefined, flag: string, int = false) => {
    if (v !== undefined && (!Number.isFinite(v) || v <= 0 || (int && !Number.isInteger(v)))) {
      throw new BadInputError(`${flag}: must be a positive ${int ? 'integer' : 'number'} (got ${v})`);
    }
  };
  pos(o.epochs, '--epochs', true);
  pos(o.batch, '--batch', true);
  pos(o.lr, '--lr');
  pos(o.p, '--p');
  if (o.teacherEpochs !== undefined && (!Number.isInteger(o.teacherEpochs) || o.teacherEpochs < 0)) throw new BadInputError(`--teacher-epochs: must be a non-negative integer`);
  if (o.ratio !== undefined && !(o.ratio > 0 && o.ratio <= 1)) throw new BadInputError(`--ratio: must be in (0, 1] (got ${o.ratio})`);
  checkAttackOptions(o);
  if (o.engine !== undefined) checkEngineChoice(o.engine);
  if (o.maxAsr !== undefined && !o.trigger && !o.poisoned) throw new BadInputError('--max-asr needs --trigger or --poisoned');
  if (o.betas?.some((b) => !Number.isFinite(b) || b < 0)) throw new BadInputError('--betas: must be non-negative numbers');
  if ((o.mean && !o.std) || (!o.mean && o.std)) throw new BadInputError('--mean and --std go together');
  if (o.std?.some((s) => !(s > 0))) throw new BadInputError('--std: values must be positive');
}

export async function clean(o: CleanOptions): Promise<CleanReport> {
  checkOptions(o);
  const log = o.onLog ?? (() => {});
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  const seed = o.seed ?? 0;
  const backend = await useBackend(o.backend ?? 'auto');
  const source = loadModel(o.model);
  const student = new TrainableModel(source, o.taps);
  const [c, h, w] = student.inputShape;
  const shape = { c, h, w };
  for (const [v, flag] of [[o.mean, '--mean'], [o.std, '--std']] as const) {
    if (v && v.length !== c) throw new BadInputError(`${flag}: ${v.length} values for a model with ${c} input channels`);
  }
  if (student.taps.length === 0) throw new BadInputError(`${o.model}: no residual-group taps found; name them with --taps`);
  const betas = o.betas ?? defaultBetas(student.taps.length);
  if (betas.length !== student.taps.length) {
    throw new BadInputError(`--betas: ${betas.length} values for ${student.taps.length} taps (${student.taps.map((t) => t.shape.join('x')).join(', ')})`);
  }
  checkAttackOptions(o, student.numClasses);
  const p = attentionExponent(o.attention ?? 'pow', o.p ?? 2);
  const schedule: LrSchedule = { ...NAD_SCHEDULE, lr: o.lr ?? NAD_SCHEDULE.lr, dropEpoch: o.lrDropEpoch ?? NAD_SCHEDULE.dropEpoch };
  const batch = o.batch ?? 64;
  const epochs = o.epochs ?? 20, teacherEpochs = o.teacherEpochs ?? 10;
  const sgdConfig = { momentum: o.momentum ?? 0.9, nesterov: true, weightDecay: o.weightDecay ?? 1e-4 };

  const train = await loadDataset({ path: o.data, shape, numClasses: student.numClasses, ratio: o.ratio, seed, flag: '--data' });
  const test: Dataset = o.test ? await loadDataset({ path: o.test, shape, numClasses: student.numClasses, flag: '--test' }) : train;
  if (!o.test) log('no --test given: metrics are measured on the --data images');
  const poisoned = o.poisoned ? await loadDataset({ path: o.poisoned, shape, numClasses: student.numClasses, flag: '--poisoned' }) : undefined;
  const trigger: Trigger | undefined = o.trigger ? await parseTrigger(o.trigger, shape) : undefined;
  const evalOpts = { trigger, poisoned, target: o.target, mean: o.mean, std: o.std, onProgress: o.onProgress };
  timings.load_s = (performance.now() - t0) / 1000;

  const tapNames = student.taps.map((t) => t.name);
  const restore = (m: TrainableModel) => {
    if (o.bnRestore === false) return 0;
    const k = Math.min(256, train.n), size = train.h * train.w * train.c;
    const calib = tf.tensor4d(normalizeBatch(train.x.subarray(0, k * size), train.c, o.mean, o.std), [k, train.h, train.w, train.c]);
    const n = m.restoreFoldedBatchNorm(calib).length;
    calib.dispose();
    return n;
  };
  let t = performance.now();
  const beforeSession = await createSession(modelBytes(source), o.model, 2, true);
  timings.session_before_s = (performance.now() - t) / 1000; // includes the child-process probe of the untrusted file
  t = performance.now();
  const before = await evaluateMetrics(beforeSession, test, { ...evalOpts, label: 'before' });
  await beforeSession.release();
  timings.eval_before_s = (performance.now() - t) / 1000;

  const sourceSha = sha256(source.bytes);
  // Resumable runs: the fingerprint covers everything that changes the result.
  const fingerprint = sha256(new TextEncoder().encode(JSON.stringify({
    // The training images and labels themselves, not their path: a changed file must not resume.
    model: sourceSha, data: sha256(new Uint8Array(train.x.buffer, train.x.byteOffset, train.x.byteLength)),
    labels: sha256(new Uint8Array(train.labels.buffer, train.labels.byteOffset, train.labels.byteLength)), n: train.n, teacher: o.teacher ?? null, teacherEpochs, epochs, betas, p,
    schedule, batch, sgdConfig, mean: o.mean ?? null, std: o.std ?? null, taps: tapNames, seed, bnRestore: o.bnRestore !== false,
  })));
  const ck = o.checkpoint ? loadCheckpoint(o.checkpoint, fingerprint) : undefined;
  let finishedTeacher: Map<string, Float32Array> | undefined;
  const engines = { teacher: 'none', nad: 'none' };
  const engineChoice: EngineChoice = o.engine ?? autoEngine(backend.name);

  // Teacher: the given ONNX model, or the backdoored model fine-tuned on the clean data.
  t = performance.now();
  let teacherBytes: Uint8Array;
  let teacherTaps: string[];
  /** The teacher with its taps exposed as graph outputs, for onnxruntime. */
  let teacherTapBytes: Uint8Array;
  let teacherLosses: EpochLoss[] = [];
  if (o.teacher) {
    const tm = TrainableModel.fromFile(o.teacher);
    if (tm.taps.length !== student.taps.length || tm.taps.some((tp, i) => tp.shape[1] !== student.taps[i]!.shape[1] || tp.shape[2] !== student.taps[i]!.shape[2])) {
      throw new BadInputError(`--teacher ${o.teacher}: its taps (${tm.taps.map((x) => x.shape.slice(1).join('x')).join(', ')}) do not match the student's spatial sizes (${student.taps.map((x) => x.shape.slice(1).join('x')).join(', ')})`);
    }
    teacherTaps = tm.taps.map((x) => x.name);
    teacherBytes = modelBytes(tm.source);
    teacherTapBytes = modelBytes(tm.source, undefined, undefined, teacherTaps);
    probeSession(teacherBytes, o.teacher);
    tm.dispose();
  } else {
    let teacherWeights: Map<string, Float32Array>;
    if (ck?.phase === 'nad' && ck.teacherWeights) {
      teacherWeights = ck.teacherWeights;
      teacherLosses = ck.teacherHistory;
      log(`teacher: taken from the checkpoint in ${o.checkpoint}`);
      engines.teacher = 'checkpoint';
    } else {
      const teacher = new TrainableModel(source, o.taps);
      restore(teacher);
      const sgd = new Sgd(sgdConfig);
      const rng = new Rng(seed + 1);
      const start = ck?.phase === 'teacher' ? resumeFrom(ck, teacher, sgd, rng) : 0;
      const history: EpochLoss[] = ck?.phase === 'teacher' ? ck.teacherHistory : [];
      if (start > 0) log(`teacher: resuming after epoch ${start} from ${o.checkpoint}`);
      log(`teacher: fine-tuning ${teacherEpochs} epochs on ${train.n} images`);
      teacherLosses = await trainEpochs(teacher, sgd, train, {
        epochs: teacherEpochs, batch, schedule, augment: NAD_AUGMENT, mean: o.mean, std: o.std, phase: 'teacher', onProgress: o.onProgress, signal: o.signal,
        engine: engineChoice, onLog: log, onEngine: (e) => (engines.teacher = e),
        startEpoch: start, history,
        onEpochEnd: (done, h) => o.checkpoint && saveCheckpoint(o.checkpoint, {
          fingerprint, phase: 'teacher', epochsDone: done, rngState: rng.state, teacherHistory: h, nadHistory: [],
          params: teacher.variableState(), momentum: sgd.state(teacher.trainableVariables()),
        }),
      }, rng);
      teacherWeights = teacher.exportWeights();
      sgd.dispose();
      teacher.dispose();
    }
    teacherBytes = modelBytes(source, teacherWeights);
    teacherTaps = tapNames;
    teacherTapBytes = modelBytes(source, teacherWeights, undefined, teacherTaps);
    finishedTeacher = teacherWeights;
  }
  timings.teacher_s = (performance.now() - t) / 1000;
  t = performance.now();
  const teacherSession = await createSession(teacherBytes, 'teacher');
  const teacherMetrics = await evaluateMetrics(teacherSession, test, { ...evalOpts, label: 'fine-tuning (teacher)' });
  await teacherSession.release();
  timings.eval_teacher_s = (performance.now() - t) / 1000;

  // Distillation: the backdoored model again, CE + attention terms towards the frozen teacher.
  t = performance.now();
  const teacherPath = o.teacher ?? 'teacher';
  const maps = await TeacherMaps.create(teacherTapBytes, teacherPath, teacherTaps, p);
  const restored = restore(student);
  if (restored > 0) log(`restored ${restored} BatchNorm layers that the exporter folded into convolutions (folded back on export)`);
  const sgd = new Sgd(sgdConfig);
  const nadRng = new Rng(seed + 2);
  const nadStart = ck?.phase === 'nad' ? resumeFrom(ck, student, sgd, nadRng) : 0;
  const nadHistory: EpochLoss[] = ck?.phase === 'nad' ? ck.nadHistory : [];
  if (nadStart > 0) log(`nad: resuming after epoch ${nadStart} from ${o.checkpoint}`);
  log(`nad: distilling ${epochs} epochs, betas ${betas.join(',')}, p ${p}`);
  const nadLosses = await trainEpochs(student, sgd, train, {
    epochs, batch, schedule, augment: NAD_AUGMENT, mean: o.mean, std: o.std, distill: { teacher: maps, betas, p }, phase: 'nad', onProgress: o.onProgress, signal: o.signal,
    engine: engineChoice, onLog: log, onEngine: (e) => (engines.nad = e),
    startEpoch: nadStart, history: nadHistory,
    onEpochEnd: (done, h) => o.checkpoint && saveCheckpoint(o.checkpoint, {
      fingerprint, phase: 'nad', epochsDone: done, rngState: nadRng.state, teacherHistory: teacherLosses, nadHistory: h,
      params: student.variableState(), momentum: sgd.state(student.trainableVariables()), teacherWeights: finishedTeacher,
    }),
  }, nadRng);
  await maps.release();
  sgd.dispose();
  timings.nad_s = (performance.now() - t) / 1000;

  const parameters = {
    teacher: o.teacher ?? null, teacher_epochs: o.teacher ? 0 : teacherEpochs, epochs, betas, p, attention: o.attention ?? 'pow',
    lr: schedule.lr, lr_drop_epoch: schedule.dropEpoch, lr_factor: schedule.factor, batch, ratio: o.ratio ?? 1,
    momentum: sgdConfig.momentum, nesterov: true, weight_decay: sgdConfig.weightDecay, augmentation: 'RandomCrop(pad 4) + HorizontalFlip + Cutout(1, 3)',
    mean: o.mean ?? null, std: o.std ?? null, taps: tapNames, seed, bn_restore: o.bnRestore !== false, restored_batchnorms: restored,
  };
  const weights = student.exportWeights();
  for (const [name, w] of weights) {
    // The loss guard sees each step's loss before its update; a last update can still overflow.
    if (!w.every(Number.isFinite)) {
      throw new NadError(`distillation diverged: weights of '${name}' are not finite after the last step; try a smaller learning rate, e.g. --lr ${schedule.lr / 10}`, ExitCode.internal);
    }
  }
  const outBytes = modelBytes(source, weights, provenanceMetadata('neural-attention-distillation', parameters, sourceSha));

  // Verify the written bytes: onnxruntime's logits must equal the trained tfjs model's.
  t = performance.now();
  const afterSession = await createSession(outBytes, o.out);
  const k = Math.min(64, test.n), size = test.h * test.w * test.c;
  const probe = normalizeBatch(test.x.subarray(0, k * size), test.c, o.mean, o.std);
  const ref = await runModel(afterSession, nhwcToNchw(probe, k, test.h, test.w, test.c), [k, test.c, test.h, test.w]);
  const mine = tf.tidy(() => student.forward(tf.tensor4d(probe, [k, test.h, test.w, test.c]), { training: false }).logits.dataSync());
  let diff = 0, scale = 0;
  for (let i = 0; i < ref.data.length; i++) {
    diff = Math.max(diff, Math.abs(ref.data[i]! - mine[i]!));
    scale = Math.max(scale, Math.abs(ref.data[i]!));
  }
  if (!(diff <= 1e-3 * Math.max(1, scale))) throw new NadError(`export check failed: onnxruntime logits differ from the trained model by ${diff}`, ExitCode.internal);
  const after = await evaluateMetrics(afterSession, test, { ...evalOpts, label: 'NAD (output)' });
  await afterSession.release();
  timings.eval_after_s = (performance.now() - t) / 1000;
  student.dispose();

  const failed: string[] = [];
  if (o.maxAccDrop !== undefined && before.acc_all - after.acc_all > o.maxAccDrop) {
    failed.push(`acc_all dropped ${(before.acc_all - after.acc_all).toFixed(2)} points (limit --max-acc-drop ${o.maxAccDrop})`);
  }
  if (o.maxAsr !== undefined && after.asr !== null && after.asr > o.maxAsr) failed.push(`asr ${after.asr.toFixed(2)}% is above --max-asr ${o.maxAsr}`);
  if (failed.length === 0) writeFileAtomic(o.out, outBytes, [o.model, ...[...source.external.values()].map((e) => e.file)]);
  timings.total_s = (performance.now() - t0) / 1000;
  timings.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  const report: CleanReport = {
    tool: { name: 'nad-onnx', version: TOOL_VERSION },
    command: 'clean',
    model: { path: o.model, sha256: sourceSha },
    output: { path: o.out, sha256: failed.length === 0 ? sha256(outBytes) : null, written: failed.length === 0 },
    parameters,
    seed,
    backend: { name: backend.name, reason: backend.reason },
    engine: engines,
    data: { train: { source: train.source, n: train.n }, test: { source: test.source, n: test.n } },
    taps: student.taps.map((x) => ({ name: x.name, shape: [...x.shape] })),
    losses: { teacher: teacherLosses, nad: nadLosses },
    before,
    teacher: teacherMetrics,
    after,
    der: { teacher: der(before, teacherMetrics), after: der(before, after) },
    gates: { passed: failed.length === 0, failed },
    export_check: { max_abs_logit_diff: diff },
    timings,
  };
  if (o.html) {
    const fig = await attentionFigure([
      { name: 'before', bytes: modelBytes(source, undefined, undefined, tapNames), taps: tapNames },
      { name: 'fine-tuning', bytes: teacherTapBytes, taps: teacherTaps },
      { name: 'NAD', bytes: modelBytes(source, weights, undefined, tapNames), taps: tapNames },
    ], test, { trigger, target: o.target, p, mean: o.mean, std: o.std });
    writeFileAtomic(o.html, new TextEncoder().encode(await renderHtmlReport(report, fig)), [o.model]);
  }
  if (failed.length > 0) throw new GateRejection(report, failed);
  return report;
}

/** Loads a checkpoint's variables, momentum and RNG state; returns the epochs already done. */
function resumeFrom(ck: CheckpointState, model: TrainableModel, sgd: Sgd, rng: Rng): number {
  model.loadVariableState(ck.params);
  sgd.setState(model.trainableVariables(), ck.momentum);
  rng.state = ck.rngState;
  return ck.epochsDone;
}

/** A missed verification gate: carries the full report so the CLI can still print it. */
export class GateRejection extends GateError {
  constructor(readonly report: CleanReport, failed: string[]) {
    super(`verification failed: ${failed.join('; ')}; nothing written`);
  }
}
