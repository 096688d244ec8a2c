/**
 * ACC / ASR / RA as the NAD code and the backdoor benchmarks report them, computed by onnxruntime-node on
 * an ONNX model (never on the tfjs model).
 */
import type * as ort from 'onnxruntime-node';
import type { Dataset } from '../data/dataset.js';
import { toModelInput } from '../data/model-input.js';
import type { Trigger } from './triggers.js';
import type { EpochProgress } from '../progress.js';
import { runModel } from './onnx-runtime.js';
import { argmaxRows } from './predictions.js';

export interface Metrics {
  /** Clean accuracy (%) on test images whose label is not the target (all images without a target). */
  acc: number;
  /** Clean accuracy (%) on the whole test set. */
  acc_all: number;
  /** Recall (%) of the target class on clean images; null without a target. */
  target_recall: number | null;
  /** Triggered non-target images classified as the target (%); null without a trigger. */
  asr: number | null;
  /** Triggered non-target images classified as their true label (%); null without a trigger. */
  ra: number | null;
  n: number;
}

export interface EvalOptions {
  trigger?: Trigger;
  /** Already-triggered images (--poisoned), labelled with their true classes. */
  poisoned?: Dataset;
  target?: number;
  mean?: number[];
  std?: number[];
  batch?: number;
  /** Progress of the evaluation passes (clean, then triggered images). */
  onProgress?: (p: EpochProgress) => void;
  /** Which model is evaluated, for progress lines. */
  label?: string;
}

/**
 * The predicted class of each image of `d` (or of the images at `rows`, in that order), with `transform`
 * (a trigger) applied first. Rows are gathered batch by batch: copying a subset out first costs more than
 * the copy itself in page faults (9,000 CIFAR images: 0.3-0.5 s, against 2 s for the whole pass).
 */
export async function predict(session: ort.InferenceSession, d: Dataset, opts: EvalOptions, transform?: Trigger, rows?: ArrayLike<number>): Promise<Int32Array> {
  const batch = opts.batch ?? 256;
  const size = d.h * d.w * d.c;
  const total = rows?.length ?? d.n;
  const preds = new Int32Array(total);
  const t0 = performance.now();
  // Two input buffers and one gather buffer, reused: the next batch is prepared while the current one waits
  // to run, and fresh arrays of this size cost more in page faults than the preparation itself.
  const most = Math.min(batch, total) * size;
  const inputs = [new Float32Array(most), new Float32Array(most)];
  const gathered = transform || rows ? new Float32Array(most) : undefined;
  let turn = 0;
  const prepare = (s: number) => {
    const n = Math.min(batch, total - s);
    let x = d.x.subarray(s * size, (s + n) * size);
    if (gathered) {
      for (let i = 0; i < n; i++) {
        const j = rows ? rows[s + i]! : s + i;
        const img = d.x.subarray(j * size, (j + 1) * size);
        if (transform) transform(img, d.h, d.w, d.c, gathered.subarray(i * size, (i + 1) * size));
        else gathered.set(img, i * size);
      }
      x = gathered.subarray(0, n * size);
    }
    const out = inputs[turn++ % 2]!.subarray(0, n * size);
    return { s, n, nchw: toModelInput(x, n, d.h, d.w, d.c, opts.mean, opts.std, out) };
  };
  // onnxruntime-node starts a run from setImmediate on this thread: the next batch is prepared before it starts.
  let cur = total > 0 ? prepare(0) : undefined;
  while (cur) {
    const { s, n } = cur;
    const running = runModel(session, cur.nchw, [n, d.c, d.h, d.w]);
    cur = s + n < total ? prepare(s + n) : undefined;
    const out = await running;
    preds.set(argmaxRows(out.data, n, out.dims[1]!), s);
    const done = s + n;
    opts.onProgress?.({
      phase: 'eval', label: `${opts.label ?? 'model'}${transform ? ', triggered' : ''}`, epoch: 0, epochs: 1, done, total, loss: Number.NaN,
      imagesPerSecond: done / Math.max((performance.now() - t0) / 1000, 1e-9),
    });
  }
  return preds;
}

const pct = (a: number, b: number) => (b === 0 ? 0 : (100 * a) / b);

export async function evaluateMetrics(session: ort.InferenceSession, test: Dataset, opts: EvalOptions): Promise<Metrics> {
  const clean = await predict(session, test, opts);
  const target = opts.target;
  let correct = 0, correctNt = 0, nt = 0, tgt = 0, tgtHit = 0;
  for (let i = 0; i < test.n; i++) {
    const ok = clean[i] === test.labels[i];
    if (ok) correct++;
    if (target === undefined || test.labels[i] !== target) {
      nt++;
      if (ok) correctNt++;
    } else {
      tgt++;
      if (ok) tgtHit++;
    }
  }
  let asr: number | null = null, ra: number | null = null;
  if (target !== undefined && (opts.trigger || opts.poisoned)) {
    let src: Dataset = test;
    let trig: Trigger | undefined = opts.trigger;
    if (opts.poisoned) {
      src = opts.poisoned;
      trig = undefined;
    }
    const keep: number[] = [];
    for (let i = 0; i < src.n; i++) if (src.labels[i] !== target) keep.push(i);
    const p = await predict(session, src, opts, trig, keep);
    let hit = 0, rob = 0;
    for (let i = 0; i < keep.length; i++) {
      if (p[i] === target) hit++;
      if (p[i] === src.labels[keep[i]!]) rob++;
    }
    asr = pct(hit, keep.length);
    ra = pct(rob, keep.length);
  }
  return {
    acc: pct(correctNt, nt),
    acc_all: pct(correct, test.n),
    target_recall: target === undefined ? null : pct(tgtHit, tgt),
    asr,
    ra,
    n: test.n,
  };
}

/** DER in percent: (max(0, dASR) - max(0, dACC_all) + 100) / 2 with d = before - after. */
export function der(before: Metrics, after: Metrics): number | null {
  if (before.asr === null || after.asr === null) return null;
  return (Math.max(0, before.asr - after.asr) - Math.max(0, before.acc_all - after.acc_all) + 100) / 2;
}
