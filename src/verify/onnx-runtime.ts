/** onnxruntime-node sessions made from validated in-memory bytes (never from a path it would resolve). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { BadInputError } from '../errors.js';
import { executionProviders } from './device.js';

const PROBE = fileURLToPath(new URL('./session-probe.js', import.meta.url));

/**
 * Loads the bytes in a child onnxruntime first, so that a native crash on a hostile file becomes a
 * BadInputError here rather than killing this process.
 */
export function probeSession(bytes: Uint8Array, where: string): void {
  if (!existsSync(PROBE)) return; // running from sources (tests): the in-process load still validates
  const r = spawnSync(process.execPath, [PROBE], { input: bytes, timeout: 120_000, maxBuffer: 1 << 20 });
  if (r.status === 0) return;
  const why = r.signal ? `onnxruntime crashed (${r.signal})` : r.error ? r.error.message : `onnxruntime cannot load the model (${r.stderr.toString().trim()})`;
  throw new BadInputError(`${where}: ${why}`);
}

/** Threads of every onnxruntime session (`--threads`). Results repeat byte for byte only at the same count. */
export const DEFAULT_THREADS = 2;
let sessionThreads = DEFAULT_THREADS;

/** Sets the threads for the sessions of one command; every command calls it, so a library caller's earlier value never carries over. */
export function useThreads(n = DEFAULT_THREADS): number {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new BadInputError(`--threads: expected a whole number of threads from 1 to 1024, got ${n}`);
  sessionThreads = n;
  return n;
}

/** `tuning`: session options that replace these defaults (bench/step-time.mjs tries others). */
export async function createSession(
  bytes: Uint8Array, where: string, threads = sessionThreads, isolate = false, tuning: ort.InferenceSession.SessionOptions = {},
): Promise<ort.InferenceSession> {
  if (isolate) probeSession(bytes, where);
  try {
    return await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      executionProviders: executionProviders(),
      // Idle threads sleep instead of spinning: the teacher's session runs beside the training step, and
      // spinning threads of one steal the two cores from the other (measured: distillation 155 -> 170-181
      // images/s, fine-tuning and evaluation unchanged; bench/README.md).
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      ...tuning,
    });
  } catch (e) {
    throw new BadInputError(`${where}: onnxruntime cannot load the model (${(e as Error).message.split('\n')[0]})`);
  }
}

/**
 * A session that only evaluates, alone on the machine: its idle threads spin between runs, as
 * onnxruntime's default. Evaluating 10,000 CIFAR-10 images with WRN-16-1 ran 6-9 % faster than with
 * sleeping threads (2 cores, AVX-512, bench/README.md); training sessions keep them asleep (above) unless
 * they run alone (createEngine's `alone`).
 */
export function createEvaluationSession(bytes: Uint8Array, where: string, isolate = false): Promise<ort.InferenceSession> {
  return createSession(bytes, where, sessionThreads, isolate, SPINNING_THREADS);
}

/** Session options whose idle threads spin between runs (onnxruntime's default), for a session that runs alone. */
export const SPINNING_THREADS: ort.InferenceSession.SessionOptions = {
  extra: { session: { intra_op: { allow_spinning: '1' }, inter_op: { allow_spinning: '1' } } },
};

/** NHWC batch -> NCHW Float32Array, the layout ONNX models take. */
export function nhwcToNchw(src: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(src.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * hw * c;
    for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[base + k * hw + p] = src[base + p * c + k]!;
  }
  return out;
}

/** NCHW batch -> NHWC Float32Array, the layout the tfjs side holds images in. */
export function nchwToNhwc(src: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(src.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let p = 0; p < hw; p++) out[(b * hw + p) * c + k] = src[(b * c + k) * hw + p]!;
  return out;
}

/** Runs the model on an NCHW batch and returns the first output (the logits), flat, with its shape. */
export async function runModel(session: ort.InferenceSession, nchw: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', nchw, dims) };
  const out = await session.run(feeds);
  const t = out[session.outputNames[0]!]!;
  return { data: t.data as Float32Array, dims: t.dims };
}
