/**
 * Epoch loop shared by the teacher (plain fine-tuning) and the student (NAD): seeded shuffle, batches,
 * the authors' augmentation, optional normalisation, one SGD step per batch, and for NAD the frozen
 * teacher's attention maps computed on exactly the augmented batch the student sees.
 */
import { augmentBatch, normalizeBatch, type AugmentConfig } from '../data/augment.js';
import type { Dataset } from '../data/dataset.js';
import type { Rng } from '../data/random.js';
import { NadError, ExitCode } from '../errors.js';
import type { TrainableModel } from '../import/trainable-model.js';
import { nhwcToNchw } from '../verify/onnx-runtime.js';
import { lrAt, type LrSchedule } from './schedule.js';
import type { Sgd } from './sgd.js';
import type { TeacherMaps } from './teacher-maps.js';
import { createEngine, type EngineChoice, type TrainingEngine } from './engine.js';

export interface EpochLoss {
  epoch: number;
  lr: number;
  loss: number;
  ce: number;
  at: number[];
  seconds: number;
  images: number;
}

export interface EpochProgress {
  /** teacher fine-tuning, distillation, or an evaluation pass (`label` says which model). */
  phase: 'teacher' | 'nad' | 'eval';
  label?: string;
  epoch: number;
  epochs: number;
  done: number;
  total: number;
  loss: number;
  imagesPerSecond: number;
}

export interface TrainConfig {
  epochs: number;
  batch: number;
  schedule: LrSchedule;
  augment: AugmentConfig;
  mean?: number[];
  std?: number[];
  distill?: { teacher: TeacherMaps; betas: number[]; p: number };
  phase: 'teacher' | 'nad';
  /** Which training engine runs the steps (default: onnxruntime where it covers the graph). */
  engine?: EngineChoice;
  /** Told which engine runs, once. */
  onEngine?: (name: string) => void;
  onLog?: (line: string) => void;
  onProgress?: (p: EpochProgress) => void;
  signal?: AbortSignal;
  /** Resume: epochs already done, and their losses (the history is extended in place). */
  startEpoch?: number;
  history?: EpochLoss[];
  /** Called after each epoch (checkpointing). */
  onEpochEnd?: (epochsDone: number, history: EpochLoss[]) => void;
}

export async function trainEpochs(model: TrainableModel, sgd: Sgd, data: Dataset, cfg: TrainConfig, rng: Rng): Promise<EpochLoss[]> {
  const size = data.h * data.w * data.c;
  const history: EpochLoss[] = cfg.history ?? [];
  const engine: TrainingEngine = await createEngine(model, sgd, {
    choice: cfg.engine ?? 'auto', distill: cfg.distill ? { betas: cfg.distill.betas, p: cfg.distill.p } : undefined, onLog: cfg.onLog,
  });
  cfg.onEngine?.(engine.name);
  try {
    await runEpochs(engine, data, cfg, rng, size, history);
  } finally {
    engine.sync();
    await engine.dispose();
  }
  return history;
}

async function runEpochs(engine: TrainingEngine, data: Dataset, cfg: TrainConfig, rng: Rng, size: number, history: EpochLoss[]): Promise<void> {
  for (let epoch = cfg.startEpoch ?? 0; epoch < cfg.epochs; epoch++) {
    const lr = lrAt(cfg.schedule, epoch);
    const order = rng.permutation(data.n);
    const t0 = performance.now();
    let sum = 0, sumCe = 0, seen = 0;
    const sumAt = new Array<number>(cfg.distill?.betas.length ?? 0).fill(0);
    // A batch is prepared (augmentation in JS, teacher maps in onnxruntime) while the previous step runs;
    // batches are still drawn and augmented in order, so the random stream is the same as without overlap.
    const prepare = (s: number) => {
      const n = Math.min(cfg.batch, data.n - s);
      if (n < 2) return undefined; // a batch of one has no batch statistics (PyTorch would fail on it too)
      const xb = new Float32Array(n * size);
      const yb = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const j = order[s + i]!;
        xb.set(data.x.subarray(j * size, (j + 1) * size), i * size);
        yb[i] = data.labels[j]!;
      }
      const x = normalizeBatch(augmentBatch(xb, n, data.h, data.w, data.c, cfg.augment, rng), data.c, cfg.mean, cfg.std);
      const nchw = nhwcToNchw(x, n, data.h, data.w, data.c);
      const maps = cfg.distill ? cfg.distill.teacher.maps(nchw, [n, data.c, data.h, data.w]) : undefined;
      maps?.catch(() => {}); // awaited below; an abort in between must not leave an unhandled rejection
      return { s, n, x, nchw, yb, maps };
    };
    let next = prepare(0);
    while (next) {
      // Yield once per batch so signals and aborts are seen promptly.
      await new Promise((resolve) => setImmediate(resolve));
      cfg.signal?.throwIfAborted();
      const cur = next;
      const { s, n } = cur;
      const maps = cur.maps ? await cur.maps : undefined;
      const stepping = engine.step({ nhwc: cur.x, nchw: cur.nchw, labels: cur.yb, n }, lr, maps);
      next = s + cfg.batch < data.n ? prepare(s + cfg.batch) : undefined;
      const l = await stepping;
      if (!Number.isFinite(l.total)) {
        throw new NadError(
          `${cfg.phase === 'teacher' ? 'teacher fine-tuning' : 'distillation'} diverged at epoch ${epoch + 1} (loss ${l.total}); try a smaller learning rate, e.g. --lr ${lr / 10}`,
          ExitCode.internal,
        );
      }
      sum += l.total * n;
      sumCe += l.ce * n;
      l.at.forEach((v, k) => (sumAt[k] += v * n));
      seen += n;
      const secs = (performance.now() - t0) / 1000;
      cfg.onProgress?.({ phase: cfg.phase, epoch, epochs: cfg.epochs, done: s + n, total: data.n, loss: sum / seen, imagesPerSecond: seen / Math.max(secs, 1e-9) });
    }
    history.push({
      epoch, lr, loss: sum / Math.max(seen, 1), ce: sumCe / Math.max(seen, 1), at: sumAt.map((v) => v / Math.max(seen, 1)),
      seconds: (performance.now() - t0) / 1000, images: seen,
    });
    if (cfg.onEpochEnd) {
      engine.sync();
      cfg.onEpochEnd(epoch + 1, history);
    }
  }
}
