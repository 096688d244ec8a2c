/**
 * The epoch loop every method shares: seeded shuffle, batches, augmentation, optional normalisation, one
 * method step per batch, progress and per-epoch losses. Per-batch extra inputs (a frozen teacher's taps) are
 * computed for the next batch while the current step runs; batches are still drawn and augmented in order,
 * so the random stream is the same as without the overlap.
 */
import { augmentBatch, normalizeBatch, type AugmentConfig } from '../data/augment.js';
import { selectRows, type Dataset } from '../data/dataset.js';
import type { Rng } from '../data/random.js';
import { DivergedError } from '../errors.js';
import { nhwcToNchw } from '../verify/onnx-runtime.js';
import type { Batch } from './engine.js';
import type { DropoutSite } from '../import/ops/dropout.js';
import { drawDropoutMasks } from './dropout-masks.js';
import type { EpochProgress } from '../progress.js';

export type { EpochProgress } from '../progress.js';
import { lrAt, type LrSchedule } from './schedule.js';

export interface EpochLoss {
  epoch: number;
  lr: number;
  loss: number;
  /** Cross-entropy term (NaN if the method has none). */
  ce: number;
  /** Attention-distillation terms per tap (NAD). */
  at: number[];
  /** Every term by name, unweighted. */
  terms: Record<string, number>;
  seconds: number;
  images: number;
}


/** One optimisation step on a prepared batch: the loss and its terms before the update. */
export type BatchStep = (batch: Batch, lr: number) => Promise<{ total: number; terms: Record<string, number> }>;

export interface EpochLoopConfig {
  phase: string;
  /** Human name of the phase for messages ('teacher fine-tuning'). */
  title: string;
  epochs: number;
  batch: number;
  schedule: LrSchedule;
  augment: AugmentConfig;
  mean?: number[];
  std?: number[];
  step: BatchStep;
  /** Dropout nodes that drop in this phase: masks are drawn after each batch's augmentation. */
  dropout?: readonly DropoutSite[];
  /** Per-batch term inputs computed from the NCHW batch (e.g. a frozen teacher's taps). */
  extras?: (nchw: Float32Array, dims: number[]) => Promise<Record<string, Float32Array>>;
  onProgress?: (p: EpochProgress) => void;
  signal?: AbortSignal;
  /** Resume: epochs already done, and their losses (extended in place). */
  startEpoch?: number;
  history?: EpochLoss[];
  /** After each epoch (checkpointing). */
  onEpochEnd?: (epochsDone: number, history: EpochLoss[]) => void;
  /** Ends the loop after an epoch before `epochs` (RNP's unlearning stops once the training accuracy is low enough). */
  stopAfter?: (epoch: EpochLoss) => boolean;
}

export async function runEpochs(data: Dataset, cfg: EpochLoopConfig, rng: Rng): Promise<EpochLoss[]> {
  const history: EpochLoss[] = cfg.history ?? [];
  // Whether the loss was finite at the start: only then is a later NaN the learning rate's doing.
  let startedFinite: boolean | undefined;
  // A resumed loop that had already met its stop stays stopped.
  const last = history[history.length - 1];
  if ((cfg.startEpoch ?? 0) > 0 && last && cfg.stopAfter?.(last)) return history;
  for (let epoch = cfg.startEpoch ?? 0; epoch < cfg.epochs; epoch++) {
    const lr = lrAt(cfg.schedule, epoch);
    const order = rng.permutation(data.n);
    const t0 = performance.now();
    let sum = 0, seen = 0;
    const sums: Record<string, number> = {};
    const prepare = (s: number) => {
      const n = Math.min(cfg.batch, data.n - s);
      if (n < 2) return undefined; // a batch of one has no batch statistics (PyTorch would fail on it too)
      const { x: xb, labels: yb } = selectRows(data, order.subarray(s, s + n));
      const x = normalizeBatch(augmentBatch(xb, n, data.h, data.w, data.c, cfg.augment, rng), data.c, cfg.mean, cfg.std);
      const nchw = nhwcToNchw(x, n, data.h, data.w, data.c);
      const dropout = cfg.dropout?.length ? drawDropoutMasks(cfg.dropout, n, rng) : undefined;
      const extras = cfg.extras?.(nchw, [n, data.c, data.h, data.w]);
      extras?.catch(() => {}); // awaited below; an abort in between must not leave an unhandled rejection
      return { s, n, x, nchw, yb, extras, dropout };
    };
    let next = prepare(0);
    while (next) {
      // Yield once per batch so signals and aborts are seen promptly.
      await new Promise((resolve) => setImmediate(resolve));
      cfg.signal?.throwIfAborted();
      const cur = next;
      const { s, n } = cur;
      const extras = cur.extras ? await cur.extras : undefined;
      const stepping = cfg.step({ nhwc: cur.x, nchw: cur.nchw, labels: cur.yb, n, extras, dropout: cur.dropout }, lr);
      next = s + cfg.batch < data.n ? prepare(s + cfg.batch) : undefined;
      const l = await stepping;
      startedFinite ??= Number.isFinite(l.total);
      if (!Number.isFinite(l.total)) {
        const advice = startedFinite ? `; try a smaller learning rate, e.g. --lr ${lr / 10}` : ' at its first step: the model or the data give non-finite values';
        throw new DivergedError(`${cfg.title} diverged at epoch ${epoch + 1} (loss ${l.total})${advice}`, lr, startedFinite);
      }
      sum += l.total * n;
      for (const [k, v] of Object.entries(l.terms)) sums[k] = (sums[k] ?? 0) + v * n;
      seen += n;
      const secs = (performance.now() - t0) / 1000;
      cfg.onProgress?.({ phase: cfg.phase, epoch, epochs: cfg.epochs, done: s + n, total: data.n, loss: sum / seen, imagesPerSecond: seen / Math.max(secs, 1e-9) });
    }
    const d = Math.max(seen, 1);
    const terms = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / d]));
    history.push({
      epoch, lr, loss: sum / d, ce: terms.ce ?? NaN, at: Object.keys(terms).filter((k) => k.startsWith('at_')).map((k) => terms[k]!), terms,
      seconds: (performance.now() - t0) / 1000, images: seen,
    });
    cfg.onEpochEnd?.(epoch + 1, history);
    if (cfg.stopAfter?.(history[history.length - 1]!)) break;
  }
  return history;
}
