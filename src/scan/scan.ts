/**
 * `scan`: evidence about a backdoor without being told the attack. For every output class, Neural Cleanse
 * reverse-engineers the smallest mask-and-pattern trigger that sends clean images there
 * (neural-cleanse.ts); a class whose mask is an outlier on the small side (anomaly index above the
 * threshold) is flagged. Runs on the onnxruntime engine (gradients with respect to the input).
 */
import { Rng } from '../data/random.js';
import type { Dataset } from '../data/dataset.js';
import { BadInputError } from '../errors.js';
import type { LoadedModel } from '../import/loaded-model.js';
import { TrainableModel } from '../import/trainable-model.js';
import { createEngine } from '../training/create-engine.js';
import type { EngineChoice } from '../training/engine.js';
import { FrozenModel } from '../training/frozen-model.js';
import { crossEntropyTerm } from '../training/loss/cross-entropy.js';
import { ParameterStore } from '../training/parameter-store.js';
import { anomalyIndices, flaggedClasses } from './anomaly-index.js';
import { NEURAL_CLEANSE_DEFAULTS, reverseTrigger, type NeuralCleanseConfig, type ReversedTrigger, type ScanImages } from './neural-cleanse.js';

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
  const order = new Rng(seed).permutation(data.n);
  const { c, h, w } = data;
  const hw = h * w, size = c * hw;
  const nchw = new Float32Array(data.n * size), labels = new Int32Array(data.n);
  order.forEach((j, i) => {
    labels[i] = data.labels[j]!;
    for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) nchw[i * size + k * hw + p] = data.x[(j * hw + p) * c + k]!;
  });
  const img: ScanImages = { nchw, labels, n: data.n, c, h, w, mean: s.mean, std: s.std };
  const store = new ParameterStore(model);
  const engine = await createEngine(model, store, { terms: [crossEntropyTerm(classes)], input: true, params: false, batchNorm: 'eval' },
    { choice: s.engine ?? 'auto', method: 'scan', onLog: s.log });
  const logits = await FrozenModel.create(source.bytes, source.path, [model.graph.outputs[0]!.name]);
  const triggers: ReversedTrigger[] = [];
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
    seconds: (performance.now() - t0) / 1000, engine: engine.name, settings: { ...cfg, seed }, triggers,
  };
  return result;
}

/** The result as JSON: everything but the mask and pattern arrays (those go to the HTML page). */
export type ScanJson = Omit<ScanResult, 'triggers'>;

export function scanJson(r: ScanResult): ScanJson {
  const { triggers: _pictures, ...rest } = r;
  return rest;
}
