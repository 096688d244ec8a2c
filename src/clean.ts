/**
 * `clean`: the pipeline every defence shares. Load and validate the model and data, measure before, run
 * the method (and the plain fine-tuning baseline), write the weights into the original ONNX graph, verify
 * the written bytes with onnxruntime, measure after, report. Every reported metric is computed by
 * onnxruntime-node on ONNX bytes.
 */
import { useBackend, type BackendChoice } from './backend/select-backend.js';
import type { Dataset } from './data/dataset.js';
import { normalizeBatch } from './data/augment.js';
import { loadDataset } from './data/load-dataset.js';
import { BadInputError, GateError, NadError, ExitCode } from './errors.js';
import { provenanceMetadata, TOOL_VERSION } from './export/provenance.js';
import { modelBytes, refuseInputPath, samePath, sha256, writeFileAtomic } from './export/write-model.js';
import { TrainableModel } from './import/trainable-model.js';
import type { DefenceContext, DefenceResult, Intermediate } from './defences/defence.js';
import { COMMON_OPTIONS, DEFAULT_METHOD, FLAG, type MethodOptions } from './defences/method-options.js';
import { defenceNamed } from './defences/registry.js';
import { RunCheckpoint } from './training/checkpoint.js';
import { DEFAULT_LR_RETRIES } from './training/phase.js';
import { checkEngineChoice, type EngineChoice } from './training/engine.js';
import type { EpochLoss, EpochProgress } from './training/epoch-loop.js';
import * as tf from './tf.js';
import { der, evaluateMetrics, type Metrics } from './verify/metrics.js';
import { createEvaluationSession, useThreads } from './verify/onnx-runtime.js';
import { checkAttackOptions, parseTrigger, type Trigger } from './verify/triggers.js';
import { checkFiniteLogits, imageTensors } from './verify/finite-logits.js';
import { useDevice, type DeviceChoice } from './verify/device.js';
import { checkBudget, memoryBudget, planMemory } from './training/memory-plan.js';
import { checkExport } from './verify/export-check.js';
import { judge } from './verify/gates.js';
import { trainBaseline } from './defences/baseline.js';
import { requireBatchNorm } from './defences/mask-pruning.js';
import { attentionFigure, type FigureModel } from './report/attention-figure.js';
import { baselineLabel, methodLabel, type CleanReport } from './report/clean-report.js';
import { renderHtmlReport } from './report/html-report.js';
import { loadModel, modelFromBytes } from './import/load-model.js';
import { checkScanData, scanJson, scanModel, type ScanResult } from './scan/scan.js';
import { checkScanOptions, DEFAULT_SCAN_IMAGES, scanImages, scanView } from './run-scan.js';

export type { CleanReport } from './report/clean-report.js';
export { defaultBetas } from './defences/nad.js';

export interface CleanOptions extends MethodOptions {
  model: string;
  data: string;
  out: string;
  test?: string;
  trigger?: string;
  target?: number;
  poisoned?: string;
  ratio?: number;
  mean?: number[];
  std?: number[];
  seed?: number;
  backend?: BackendChoice;
  /** Training engine: onnxruntime (default where it covers the graph and the method) or tfjs. */
  engine?: EngineChoice;
  /** Where onnxruntime runs: cpu, cuda (its CUDA provider must be installed), or auto. */
  device?: DeviceChoice;
  /** Threads of each onnxruntime session (default 2). */
  threads?: number;
  taps?: string[];
  maxAccDrop?: number;
  maxAsr?: number;
  /** Save the state after every epoch here, and resume from it when rerun with the same arguments. */
  checkpoint?: string;
  /** Also write a self-contained HTML report to this path. */
  html?: string;
  /** Restore BatchNorms that PyTorch folded into convs, for training (default true). */
  bnRestore?: boolean;
  /** Memory budget in GB for the planned peak (default: the memory available when the run starts). */
  maxMemory?: number;
  /** Scan for a backdoor (Neural Cleanse) before and after cleaning. */
  scan?: boolean;
  /** With scan: fail (nothing written) if the cleaned model's largest anomaly index is above this. */
  maxAnomaly?: number;
  /** With scan: epoch budget per class (default 20) and the most --data images scanned (default 1000). */
  scanEpochs?: number;
  scanImages?: number;
  onProgress?: (p: EpochProgress) => void;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

function checkOptions(o: CleanOptions): void {
  if (o.ratio !== undefined && !(o.ratio > 0 && o.ratio <= 1)) throw new BadInputError(`--ratio: must be in (0, 1] (got ${o.ratio})`);
  checkAttackOptions(o);
  if (o.engine !== undefined) checkEngineChoice(o.engine);
  if (o.maxAsr !== undefined && !o.trigger && !o.poisoned) throw new BadInputError('--max-asr needs --trigger or --poisoned');
  if ((o.mean && !o.std) || (!o.mean && o.std)) throw new BadInputError('--mean and --std go together');
  if (o.std?.some((s) => !(s > 0))) throw new BadInputError('--std: values must be positive');
  for (const [v, flag] of [[o.maxAnomaly, '--max-anomaly'], [o.scanEpochs, '--scan-epochs'], [o.scanImages, '--scan-images']] as const) {
    if (v !== undefined && !o.scan) throw new BadInputError(`${flag} needs --scan`);
  }
  if (o.scan) checkScanOptions({ epochs: o.scanEpochs, maxImages: o.scanImages }, { maxImages: '--scan-images', epochs: '--scan-epochs' });
  if (o.maxAnomaly !== undefined && !(o.maxAnomaly > 0)) throw new BadInputError(`--max-anomaly: must be positive (got ${o.maxAnomaly})`);
  if (o.maxMemory !== undefined && !(o.maxMemory > 0)) throw new BadInputError(`--max-memory: must be a positive number of GB (got ${o.maxMemory})`);
  // Outputs that would overwrite an input, or each other, are refused before anything trains.
  const inputs = [o.model, o.data, o.test, o.poisoned, o.teacher].filter((p): p is string => p !== undefined);
  refuseInputPath(o.out, inputs, '--out');
  if (o.html) {
    refuseInputPath(o.html, inputs, '--html');
    if (samePath(o.html, o.out)) throw new BadInputError(`--html ${o.html}: the same file as --out`);
  }
}

/** Flags given for a method they do not apply to (checked after the model and data loaded, so a broken file is named first). */
function checkApplicable(o: CleanOptions, method: string, owned: readonly (keyof MethodOptions)[]): void {
  for (const key of Object.keys(FLAG) as (keyof MethodOptions)[]) {
    const given = key === 'baseline' ? o.baseline === false : o[key] !== undefined;
    if (!given || COMMON_OPTIONS.includes(key) || owned.includes(key)) continue;
    if (key === 'teacherMethod' || key === 'teacher' || key === 'teacherEpochs') throw new BadInputError(`${FLAG[key]} needs --method nad (got --method ${method})`);
    throw new BadInputError(`${FLAG[key]} does not apply to --method ${method}`);
  }
}

export async function clean(o: CleanOptions): Promise<CleanReport> {
  checkOptions(o);
  const log = o.onLog ?? (() => {});
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  const seed = o.seed ?? 0;
  const backend = await useBackend(o.backend ?? 'auto');
  const device = { ...(await useDevice(o.device ?? 'auto')), threads: useThreads(o.threads) };
  const source = loadModel(o.model);
  const probe = new TrainableModel(source, o.taps);
  const [c, h, w] = probe.inputShape;
  const shape = { c, h, w };
  const numClasses = probe.numClasses;
  const taps = probe.taps.map((x) => ({ name: x.name, shape: [...x.shape] }));
  const parameterBytes = [...probe.params.values()].reduce((a, p) => a + p.variable.size * 4, 0);
  const locator = { tensors: imageTensors(probe.graph), bytesWith: (names: string[]) => modelBytes(source, undefined, undefined, names) };
  const floatsPerImage = [...probe.shapes.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  probe.dispose();
  for (const [v, flag] of [[o.mean, '--mean'], [o.std, '--std']] as const) {
    if (v && v.length !== c) throw new BadInputError(`${flag}: ${v.length} values for a model with ${c} input channels`);
  }
  checkAttackOptions(o, numClasses);

  const train = await loadDataset({ path: o.data, shape, numClasses, ratio: o.ratio, seed, flag: '--data' });
  const test: Dataset = o.test ? await loadDataset({ path: o.test, shape, numClasses, flag: '--test' }) : train;
  if (!o.test) log('no --test given: metrics are measured on the --data images');
  const poisoned = o.poisoned ? await loadDataset({ path: o.poisoned, shape, numClasses, flag: '--poisoned' }) : undefined;
  const trigger: Trigger | undefined = o.trigger ? await parseTrigger(o.trigger, shape) : undefined;
  if (o.scan) checkScanData(train, numClasses, '--data');
  const evalOpts = { trigger, poisoned, target: o.target, mean: o.mean, std: o.std, onProgress: o.onProgress };
  timings.load_s = (performance.now() - t0) / 1000;

  // The method and its flags, now that the model and the data are known to be good.
  const method = o.method ?? DEFAULT_METHOD;
  const def = defenceNamed(method);
  checkApplicable(o, method, def.options);
  const resolved = def.resolve(o);
  def.checkModel?.(resolved, o.model, taps);
  if (o.engine === 'tfjs' && def.onnxruntimeOnly) throw new BadInputError(`--engine tfjs: cannot run --method ${method} (the tfjs engine has no ${def.onnxruntimeOnly}); use --engine onnxruntime`);
  const runBaseline = method !== 'nad' && method !== 'ft' && o.baseline !== false;

  // The planned peak against the budget, before anything trains.
  const plan = planMemory({
    floatsPerImage, parameterBytes, stateFactor: def.stateFactor(resolved), batch: def.describe(resolved).batch as number,
    dataBytes: train.x.byteLength + (o.test ? test.x.byteLength : 0) + (poisoned?.x.byteLength ?? 0), frozenModels: def.frozenModels ?? 0,
    inputGradientGraphs: def.inputGradientGraphs ?? 0, restartSnapshot: o.lr === undefined,
  });
  const budget = memoryBudget(o.maxMemory);
  checkBudget(plan, budget, o.maxMemory);

  let t = performance.now();
  const beforeSession = await createEvaluationSession(modelBytes(source), o.model, true);
  timings.session_before_s = (performance.now() - t) / 1000; // includes the child-process probe of the untrusted file
  await checkFiniteLogits(beforeSession, o.model, train, { mean: o.mean, std: o.std, flag: '--data' }, locator);
  t = performance.now();
  const before = await evaluateMetrics(beforeSession, test, { ...evalOpts, label: 'before' });
  await beforeSession.release();
  timings.eval_before_s = (performance.now() - t) / 1000;
  const scanData = o.scan ? scanImages(train, o.scanImages ?? DEFAULT_SCAN_IMAGES, seed) : undefined;
  const runScan = async (label: string, m: typeof source): Promise<ScanResult> => {
    t = performance.now();
    const r = await scanModel(m, scanData!, {
      seed, engine: o.engine, mean: o.mean, std: o.std, log: (l) => log(`scan ${label}: ${l}`), neuralCleanse: o.scanEpochs !== undefined ? { epochs: o.scanEpochs } : undefined,
    });
    timings[`scan_${label}_s`] = (performance.now() - t) / 1000;
    log(`scan ${label}: ${r.flagged.length ? `flagged ${r.flagged.join(', ')}` : 'nothing flagged'} (max anomaly index ${r.max_anomaly_index.toFixed(2)})`);
    return r;
  };
  const scanBefore = o.scan ? await runScan('before', source) : undefined;

  const sourceSha = sha256(source.bytes);
  const methodParameters = def.describe(resolved);
  // Resumable runs: the fingerprint covers everything that changes the result.
  const fingerprint = sha256(new TextEncoder().encode(JSON.stringify({
    // The training images and labels themselves, not their path: a changed file must not resume.
    model: sourceSha, data: sha256(new Uint8Array(train.x.buffer, train.x.byteOffset, train.x.byteLength)),
    labels: sha256(new Uint8Array(train.labels.buffer, train.labels.byteOffset, train.labels.byteLength)), n: train.n,
    method, methodParameters, baseline: runBaseline, mean: o.mean ?? null, std: o.std ?? null, taps: taps.map((x) => x.name), seed, bnRestore: o.bnRestore !== false,
  })));
  let restoredCount = 0;
  const trainingWarnings: string[] = [];
  const ctx: DefenceContext = {
    source, tapNames: o.taps, taps, numClasses, data: train, mean: o.mean, std: o.std, seed, engine: o.engine ?? 'auto',
    preferTfjs: backend.name === 'tensorflow-gpu', method, checkpoint: RunCheckpoint.open(o.checkpoint, fingerprint), log,
    onProgress: o.onProgress, signal: o.signal,
    // A default learning rate too large for this model is lowered (twice at most); one the user chose is kept.
    lrRetries: o.lr === undefined ? DEFAULT_LR_RETRIES : 0, warn: (line) => trainingWarnings.push(line),
    restore: (m) => {
      if (o.bnRestore === false) return 0;
      const k = Math.min(256, train.n), size = train.h * train.w * train.c;
      const calib = tf.tensor4d(normalizeBatch(train.x.subarray(0, k * size), train.c, o.mean, o.std), [k, train.h, train.w, train.c]);
      const n = m.restoreFoldedBatchNorm(calib).length;
      calib.dispose();
      if (n > 0 && restoredCount === 0) log(`restored ${n} BatchNorm layers that the exporter folded into convolutions (folded back on export)`);
      restoredCount = n;
      return n;
    },
  };

  // A method that masks BatchNorm channels is refused on a model without any before the baseline trains.
  if (def.masksBatchNorm) {
    const probeBn = new TrainableModel(source, o.taps);
    ctx.restore(probeBn);
    const maskers = method.split('+').filter((m) => defenceNamed(m).masksBatchNorm).map((m) => m.toUpperCase());
    requireBatchNorm(method, probeBn, o.model, maskers.join(' and '));
    probeBn.dispose();
  }

  // The plain fine-tuning baseline, for the methods that do not make one on their way.
  t = performance.now();
  let baseline: Intermediate | undefined;
  const losses: Record<string, EpochLoss[]> = {};
  const engines: Record<string, string> = {};
  if (runBaseline) {
    const b = await trainBaseline(ctx);
    Object.assign(losses, b.losses);
    Object.assign(engines, b.engines);
    baseline = b.model;
  }
  timings.baseline_s = (performance.now() - t) / 1000;

  t = performance.now();
  log(`${method}: ${def.summary}`);
  const result: DefenceResult = def.run
    ? await def.run(ctx, resolved)
    : { ...(await def.train(ctx, resolved, { name: method, seedOffset: method === 'ft' ? 1 : 2 })), parameters: methodParameters };
  timings.method_s = (performance.now() - t) / 1000;
  Object.assign(losses, result.losses);
  Object.assign(engines, result.engines);
  for (const [phase, l] of Object.entries(losses)) timings[`${phase}_s`] = l.reduce((a, e) => a + e.seconds, 0);
  const teacherModel = result.teacher ?? baseline;

  // A model the method made on its way, measured like the output.
  const measure = async (m: Intermediate, label: string): Promise<Metrics> => {
    const s = await createEvaluationSession(m.bytes, m.path ?? m.label);
    try {
      return await evaluateMetrics(s, test, { ...evalOpts, label });
    } finally {
      await s.release();
    }
  };
  t = performance.now();
  let teacherMetrics: Metrics | null = teacherModel ? await measure(teacherModel, baselineLabel({ method, baseline: { method: teacherModel.method } })) : null;
  timings.eval_teacher_s = (performance.now() - t) / 1000;
  t = performance.now();
  const stages: NonNullable<CleanReport['stages']> = [];
  for (const st of result.stages ?? []) {
    const metrics = await measure(st, st.label);
    stages.push({ method: st.method, label: st.label, metrics, der: der(before, metrics) });
  }
  if (stages.length) timings.eval_stages_s = (performance.now() - t) / 1000;

  const student = result.model;
  result.store.writeTo(student);
  const parameters = {
    ...result.parameters, ratio: o.ratio ?? 1, mean: o.mean ?? null, std: o.std ?? null, taps: taps.map((x) => x.name), seed,
    bn_restore: o.bnRestore !== false, restored_batchnorms: result.restored,
  };
  const weights = student.exportWeights();
  for (const [name, v] of weights) {
    // The loss guard sees each step's loss before its update; a last update can still overflow.
    if (!v.every(Number.isFinite)) {
      student.dispose();
      throw new NadError(`${methodLabel(method)} produced non-finite weights in '${name}'; try a smaller learning rate, e.g. --lr ${((result.parameters.lr as number) ?? 0.1) / 10}`, ExitCode.internal);
    }
  }
  const outBytes = modelBytes(source, weights, provenanceMetadata(def.provenance, parameters, sourceSha));

  // Verify the written bytes: onnxruntime's logits must equal the trained model's.
  t = performance.now();
  const afterSession = await createEvaluationSession(outBytes, o.out);
  const diff = await checkExport(afterSession, test, o, (x, n) =>
    tf.tidy(() => new Float32Array(student.forward(tf.tensor4d(x, [n, test.h, test.w, test.c]), { training: false, release: true }).logits.dataSync())));
  const after = await evaluateMetrics(afterSession, test, { ...evalOpts, label: `${methodLabel(method)} (output)` });
  await afterSession.release();
  timings.eval_after_s = (performance.now() - t) / 1000;
  student.dispose();
  if (method === 'ft') teacherMetrics = after;

  const scanAfter = o.scan ? await runScan('after', modelFromBytes(outBytes, o.out)) : undefined;
  const { failed, warnings } = judge({
    before, after, baseline: method === 'ft' ? null : teacherMetrics, label: methodLabel(method), maxAccDrop: o.maxAccDrop, maxAsr: o.maxAsr,
    // NAD's baseline is its teacher: fine-tuned unless another method or a given file made it.
    baselineName: teacherModel?.method === 'given' ? 'the given teacher' : teacherModel && teacherModel.method !== 'ft' ? `its ${methodLabel(teacherModel.method)} teacher` : undefined,
    maxAnomaly: o.maxAnomaly, anomalyAfter: scanAfter?.max_anomaly_index,
  });
  warnings.unshift(...trainingWarnings);
  if (ctx.checkpoint.otherMachine) {
    warnings.unshift(`warning: resumed a checkpoint written on ${ctx.checkpoint.otherMachine}, here ${ctx.checkpoint.machine}: the run finished, but its bytes can differ from an uninterrupted run (onnxruntime picks kernels by CPU)`);
  }
  if (failed.length === 0) writeFileAtomic(o.out, outBytes, [o.model, ...[...source.external.values()].map((e) => e.file)]);
  timings.total_s = (performance.now() - t0) / 1000;
  timings.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  const report: CleanReport = {
    tool: { name: 'nad-onnx', version: TOOL_VERSION },
    command: 'clean',
    method,
    model: { path: o.model, sha256: sourceSha },
    output: { path: o.out, sha256: failed.length === 0 ? sha256(outBytes) : null, written: failed.length === 0 },
    parameters,
    seed,
    backend: { name: backend.name, reason: backend.reason },
    device,
    engine: engines,
    data: { train: { source: train.source, n: train.n }, test: { source: test.source, n: test.n } },
    taps,
    losses,
    before,
    teacher: teacherMetrics,
    baseline: method === 'ft' ? { method: 'output' } : teacherModel ? { method: teacherModel.method } : null,
    after,
    der: { teacher: teacherMetrics ? der(before, teacherMetrics) : null, after: der(before, after) },
    ...(stages.length ? { stages } : {}),
    gates: { passed: failed.length === 0, failed },
    warnings,
    export_check: { max_abs_logit_diff: diff },
    ...(scanBefore && scanAfter ? { scan: { before: scanJson(scanBefore), after: scanJson(scanAfter) } } : {}),
    memory: {
      parameters_mb: parameterBytes / 2 ** 20,
      training_state_mb: (parameterBytes * (1 + def.stateFactor(resolved))) / 2 ** 20,
      planned_peak_mb: plan.total / 2 ** 20,
      budget_mb: budget / 2 ** 20,
      measured_peak_mb: timings.peak_rss_mb!,
      parts: plan.parts.map((p) => ({ what: p.what, mb: p.bytes / 2 ** 20 })),
    },
    timings,
  };
  const scanViews = () => (scanBefore && scanAfter ? [scanView('scan before cleaning', scanBefore, shape), scanView('scan after cleaning', scanAfter, shape)] : []);
  if (o.html && taps.length > 0) {
    const tapNames = taps.map((x) => x.name);
    const models: FigureModel[] = [{ name: 'before', bytes: modelBytes(source, undefined, undefined, tapNames), taps: tapNames }];
    if (teacherModel) models.push({ name: method === 'nad' ? 'teacher' : 'fine-tuning', bytes: teacherModel.tapBytes, taps: teacherModel.taps });
    models.push({ name: methodLabel(method), bytes: modelBytes(source, weights, undefined, tapNames), taps: tapNames });
    const fig = await attentionFigure(models, test, { trigger, target: o.target, p: (parameters as { p?: number }).p ?? 2, mean: o.mean, std: o.std });
    writeFileAtomic(o.html, new TextEncoder().encode(await renderHtmlReport(report, fig, scanViews())), [o.model], '--html');
  } else if (o.html) {
    writeFileAtomic(o.html, new TextEncoder().encode(await renderHtmlReport(report, undefined, scanViews())), [o.model], '--html');
  }
  if (failed.length > 0) throw new GateRejection(report, failed);
  return report;
}

/** A missed verification gate: carries the full report so the CLI can still print it. */
export class GateRejection extends GateError {
  constructor(readonly report: CleanReport, failed: string[]) {
    super(`verification failed: ${failed.join('; ')}; nothing written`);
  }
}
