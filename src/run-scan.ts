/**
 * `scan`: load and check the model and the clean data, reverse-engineer a trigger per class, flag the
 * outliers, and write the HTML page if asked. Bad input ends with BadInputError before any work.
 */
import { loadDataset } from './data/load-dataset.js';
import { selectRows, type Dataset } from './data/dataset.js';
import { subsetIndices } from './data/random.js';
import { BadInputError } from './errors.js';
import { refuseInputPath, writeFileAtomic } from './export/write-model.js';
import { loadModel } from './import/load-model.js';
import { buildGraph, imageInputShape } from './import/graph.js';
import { renderScanHtml, type ScanView } from './report/scan-html.js';
import { checkScanData, scanModel, type ScanResult, type ScanSettings } from './scan/scan.js';
import { checkEngineChoice, type EngineChoice } from './training/engine.js';
import { useBackend } from './backend/select-backend.js';
import { useThreads } from './verify/onnx-runtime.js';

export interface ScanOptions {
  model: string;
  data: string;
  /** Use a seeded random fraction of --data. */
  ratio?: number;
  /** Scan at most this many images of --data (a seeded subset; default 1000). */
  maxImages?: number;
  mean?: number[];
  std?: number[];
  seed?: number;
  threshold?: number;
  /** Epoch budget per class (default 20). */
  epochs?: number;
  engine?: EngineChoice;
  /** Threads of each onnxruntime session (default 2). */
  threads?: number;
  html?: string;
  onLog?: (line: string) => void;
  onProgress?: ScanSettings['onProgress'];
}

export const DEFAULT_SCAN_IMAGES = 1000;

/** The scan images: --data (after --ratio), capped at maxImages by a seeded subset. */
export function scanImages(data: Dataset, maxImages: number, seed: number): Dataset {
  return data.n <= maxImages ? data : selectRows(data, subsetIndices(data.n, maxImages / data.n, seed + 7));
}

/** `flags`: how the caller names the budget options (scan: --max-images / --epochs; clean: --scan-images / --scan-epochs). */
export function checkScanOptions(o: Pick<ScanOptions, 'ratio' | 'maxImages' | 'threshold' | 'epochs' | 'mean' | 'std' | 'engine'>, flags = { maxImages: '--max-images', epochs: '--epochs' }): void {
  if (o.ratio !== undefined && !(o.ratio > 0 && o.ratio <= 1)) throw new BadInputError(`--ratio: must be in (0, 1] (got ${o.ratio})`);
  if (o.maxImages !== undefined && !(Number.isInteger(o.maxImages) && o.maxImages >= 10)) throw new BadInputError(`${flags.maxImages}: must be an integer of at least 10 (got ${o.maxImages})`);
  if (o.threshold !== undefined && !(o.threshold > 0)) throw new BadInputError(`--threshold: must be positive (got ${o.threshold})`);
  if (o.epochs !== undefined && !(Number.isInteger(o.epochs) && o.epochs >= 1)) throw new BadInputError(`${flags.epochs}: must be a positive integer (got ${o.epochs})`);
  if ((o.mean && !o.std) || (!o.mean && o.std)) throw new BadInputError('--mean and --std go together');
  if (o.std?.some((s) => !(s > 0))) throw new BadInputError('--std: values must be positive');
  if (o.engine !== undefined) checkEngineChoice(o.engine);
}

export function scanView(title: string, r: ScanResult, shape: { c: number; h: number; w: number }): ScanView {
  return { title, classes: r.classes, flagged: r.flagged, threshold: r.threshold, triggers: r.triggers, shape, secondary: r.secondary };
}

export async function scan(o: ScanOptions): Promise<ScanResult> {
  checkScanOptions(o);
  // As in clean: an --html over an input is refused before the scan, not after it.
  if (o.html) refuseInputPath(o.html, [o.model, o.data], '--html');
  useThreads(o.threads);
  await useBackend('wasm');
  const seed = o.seed ?? 0;
  const source = loadModel(o.model);
  const graph = buildGraph(source);
  const [c, h, w] = imageInputShape(graph);
  const outDims = graph.outputs[0]!.dims;
  const classes = typeof outDims[1] === 'number' ? outDims[1] : NaN;
  for (const [v, flag] of [[o.mean, '--mean'], [o.std, '--std']] as const) {
    if (v && v.length !== c) throw new BadInputError(`${flag}: ${v.length} values for a model with ${c} input channels`);
  }
  if (Number.isFinite(classes) && classes < 3) throw new BadInputError(`${o.model}: the model has ${classes} classes; the anomaly index needs at least 3`);
  const all = await loadDataset({ path: o.data, shape: { c, h, w }, numClasses: Number.isFinite(classes) ? classes : Number.MAX_SAFE_INTEGER, ratio: o.ratio, seed, flag: '--data' });
  if (Number.isFinite(classes)) checkScanData(all, classes, '--data');
  const data = scanImages(all, o.maxImages ?? DEFAULT_SCAN_IMAGES, seed);
  const r = await scanModel(source, data, {
    threshold: o.threshold, seed, engine: o.engine, mean: o.mean, std: o.std, log: o.onLog, onProgress: o.onProgress,
    neuralCleanse: o.epochs !== undefined ? { epochs: o.epochs } : undefined,
  });
  if (o.html) {
    const html = await renderScanHtml([scanView(`scan of ${o.model}`, r, { c, h, w })], `nad-onnx scan: ${o.model}`);
    writeFileAtomic(o.html, new TextEncoder().encode(html), [o.model, o.data], '--html');
  }
  return r;
}
