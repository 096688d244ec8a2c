/**
 * `scan`: evidence about a backdoor without being told the attack. For every output class, Neural Cleanse
 * reverse-engineers the smallest mask-and-pattern trigger that sends clean images there
 * (neural-cleanse.ts); a class whose mask is an outlier on the small side (anomaly index above the
 * threshold) is flagged. Runs on the onnxruntime engine (gradients with respect to the input).
 */
import { Rng } from '../data/random.js';
import { selectRows, type Dataset } from '../data/dataset.js';
import { toModelInput } from '../data/model-input.js';
import { nhwcToNchw } from '../verify/onnx-runtime.js';
import { BadInputError } from '../errors.js';
import type { LoadedModel } from '../import/loaded-model.js';
import { TrainableModel } from '../import/trainable-model.js';
import { createEngine } from '../training/create-engine.js';
import type { EngineChoice } from '../training/engine.js';
import { FrozenModel } from '../training/frozen-model.js';
import { ParameterStore } from '../training/parameter-store.js';
import { anomalyIndices, flaggedClasses } from './anomaly-index.js';
import { NEURAL_CLEANSE_DEFAULTS, reverseTrigger, triggerSearchSpec, type NeuralCleanseConfig, type ReversedTrigger, type ScanImages } from './neural-cleanse.js';
import { reverseFeatureTrigger } from './feature-cleanse.js';
import { modelBytes } from '../export/write-model.js';
import { tailModelBytes } from '../export/tail-model.js';
import { modelFromBytes } from '../import/load-model.js';

export interface ScanSettings {
  /** Anomaly index above which a class is flagged (default 2). */
  threshold?: number;
  seed?: number;
  engine?: EngineChoice;
  mean?: number[];
  std?: number[];
  neuralCleanse?: Partial<NeuralCleanseConfig>;
  log?: (line: string) => void;
  /** Per class and epoch. */
  onProgress?: (p: { label: number; classes: number; epoch: number; epochs: number; success: number; maskL1: number }) => void;
}

export interface ScanClass {
  label: number;
  name?: string;
  mask_l1: number;
  anomaly_index: number;
  trigger_success: number;
  /** Whether the optimisation reached the success threshold (else its last mask is reported). */
  reached: boolean;
  epochs: number;
}

/** The second signal: the channel mask after the deepest tap that the tail of the network needs per class. */
export interface SecondarySignal {
  method: 'feature-cleanse';
  /** The tap whose features are masked. */
  tap: string;
  /** score = the anomaly index of the class's channel-mask norm (small side). */
  classes: { label: number; score: number }[];
  flagged: number[];
  /** |m|_1 per class: how many channels the feature-space trigger needs. */
  channels_l1: number[];
  median: number;
  mad: number;
  seconds: number;
}

export interface ScanResult {
  method: 'neural-cleanse';
  classes: ScanClass[];
  flagged: number[];
  max_anomaly_index: number;
  threshold: number;
  median_mask_l1: number;
  mad: number;
  images: number;
  seconds: number;
  engine: string;
  settings: NeuralCleanseConfig & { seed: number };
  /** Absent when no tap separates the input from the outputs (then there is no tail to differentiate). */
  secondary?: SecondarySignal;
  /** Masks (H x W) and patterns (C x H x W) per class, for the HTML report; not part of the JSON. */
  triggers: ReversedTrigger[];
}

/** Checks that scanning this data is meaningful: at least 3 classes, every class present. */
export function checkScanData(data: Dataset, classes: number, flag: string): void {
  if (classes < 3) throw new BadInputError(`${flag}: the model has ${classes} classes; the anomaly index needs at least 3`);
  const counts = new Array<number>(classes).fill(0);
  for (const l of data.labels) counts[l]!++;
  const empty = counts.findIndex((n) => n === 0);
  if (empty >= 0) throw new BadInputError(`${flag} ${data.source}: class ${empty}${data.classes?.[empty] ? ` (${data.classes[empty]})` : ''} has no images`);
}

export async function scanModel(source: LoadedModel, data: Dataset, s: ScanSettings = {}): Promise<ScanResult> {
  const t0 = performance.now();
  const cfg: NeuralCleanseConfig = { ...NEURAL_CLEANSE_DEFAULTS, ...s.neuralCleanse };
  const threshold = s.threshold ?? 2;
  const seed = s.seed ?? 0;
  const model = new TrainableModel(source);
  const classes = model.numClasses;
  checkScanData(data, classes, '--data');
  // One seeded order of the images, visited in the same order every epoch and for every class.
  const ordered = selectRows(data, new Rng(seed).permutation(data.n));
  const { c, h, w } = data;
  const img: ScanImages = { nchw: nhwcToNchw(ordered.x, ordered.n, h, w, c), labels: ordered.labels, n: ordered.n, c, h, w, mean: s.mean, std: s.std };
  const store = new ParameterStore(model);
  const engine = await createEngine(model, store, triggerSearchSpec(classes),
    { choice: s.engine ?? 'auto', method: 'scan', onLog: s.log });
  const logits = await FrozenModel.create(source.bytes, source.path, [model.graph.outputs[0]!.name]);
  const triggers: ReversedTrigger[] = [];
  const taps = model.taps.map((t) => ({ name: t.name, shape: [...t.shape] }));
  try {
    for (let t = 0; t < classes; t++) {
      triggers.push(await reverseTrigger(engine, logits, img, t, classes, cfg,
        (epoch, success, maskL1) => s.onProgress?.({ label: t, classes, epoch, epochs: cfg.epochs, success, maskL1 })));
      s.log?.(`class ${t}: mask L1 ${triggers[t]!.maskL1.toFixed(1)}, trigger success ${(100 * triggers[t]!.triggerSuccess).toFixed(1)} %, ${triggers[t]!.epochs} epochs${triggers[t]!.reached ? '' : ' (never reached the success threshold)'}`);
    }
  } finally {
    await engine.dispose();
    await logits.release();
    model.dispose();
  }
  const secondary = await featureSignal(source, taps, ordered, s.mean, s.std, classes, cfg, threshold, s.engine, s.log);
  const a = anomalyIndices(triggers.map((x) => x.maskL1));
  const result: ScanResult = {
    method: 'neural-cleanse',
    classes: triggers.map((x, label) => ({
      label, ...(data.classes?.[label] ? { name: data.classes[label] } : {}), mask_l1: x.maskL1, anomaly_index: a.indices[label]!,
      trigger_success: x.triggerSuccess, reached: x.reached, epochs: x.epochs,
    })),
    flagged: flaggedClasses(a.indices, threshold),
    max_anomaly_index: Math.max(...a.indices),
    threshold, median_mask_l1: a.median, mad: a.mad, images: data.n,
    seconds: (performance.now() - t0) / 1000, engine: engine.name, settings: { ...cfg, seed }, ...(secondary ? { secondary } : {}), triggers,
  };
  return result;
}

/** The result as JSON: everything but the mask and pattern arrays (those go to the HTML page). */
export type ScanJson = Omit<ScanResult, 'triggers'>;

export function scanJson(r: ScanResult): ScanJson {
  const { triggers: _pictures, ...rest } = r;
  return rest;
}

/** The feature-space signal at the deepest tap that has a tail (undefined if none has). */
async function featureSignal(
  source: LoadedModel, taps: { name: string; shape: number[] }[], images: Dataset, mean: number[] | undefined, std: number[] | undefined,
  classes: number, cfg: NeuralCleanseConfig, threshold: number,
  engineChoice: EngineChoice | undefined, log?: (line: string) => void,
): Promise<SecondarySignal | undefined> {
  const t0 = performance.now();
  let tail: { bytes: Uint8Array; tap: { name: string; shape: number[] } } | undefined;
  for (const tap of [...taps].reverse()) {
    try {
      tail = { bytes: tailModelBytes(source, tap.name, [1, ...tap.shape]), tap };
      break;
    } catch (e) {
      if (!(e instanceof BadInputError)) throw e;
    }
  }
  if (!tail) {
    log?.('feature-space signal: no tap separates the input from the outputs; skipped');
    return undefined;
  }
  const [c, h, w] = tail.tap.shape as [number, number, number];
  // The scan images' features at the tap, in the same order.
  const featureModel = await FrozenModel.create(modelBytes(source, undefined, undefined, [tail.tap.name]), source.path, [tail.tap.name]);
  const size = images.c * images.h * images.w, fsize = c * h * w;
  const features = new Float32Array(images.n * fsize);
  try {
    for (let from = 0; from < images.n; from += 128) {
      const n = Math.min(128, images.n - from);
      const x = toModelInput(images.x.subarray(from * size, (from + n) * size), n, images.h, images.w, images.c, mean, std);
      features.set((await featureModel.run(x, [n, images.c, images.h, images.w]))[0]!, from * fsize);
    }
  } finally {
    await featureModel.release();
  }
  const tailSource = modelFromBytes(tail.bytes, `${source.path} (after ${tail.tap.name})`);
  const tailModel = new TrainableModel(tailSource);
  const engine = await createEngine(tailModel, new ParameterStore(tailModel), triggerSearchSpec(classes),
    { choice: engineChoice ?? 'auto', method: 'scan', onLog: log });
  const scores: number[] = [];
  try {
    for (let t = 0; t < classes; t++) {
      const r = await reverseFeatureTrigger(engine, { features, labels: images.labels, n: images.n, c, h, w }, t, classes, cfg);
      scores.push(r.score);
      log?.(`class ${t}: feature-space mask ${r.score.toFixed(1)} of ${c} channels${r.reached ? '' : ' (never reached the success threshold)'}`);
    }
  } finally {
    await engine.dispose();
    tailModel.dispose();
  }
  const a = anomalyIndices(scores);
  return {
    method: 'feature-cleanse', tap: tail.tap.name, classes: a.indices.map((score, label) => ({ label, score })),
    flagged: flaggedClasses(a.indices, threshold), channels_l1: scores, median: a.median, mad: a.mad, seconds: (performance.now() - t0) / 1000,
  };
}
