/** Paths to committed fixtures and small shared helpers for the tests. */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { useBackend } from '../../src/backend/select-backend.js';
import { readNpz } from '../../src/data/numpy-files.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(ROOT, 'fixtures');
export const MODELS = join(FIXTURES, 'models');
export const REFERENCE = join(FIXTURES, 'reference');

/** Every committed fixture model (path relative to fixtures/models). */
export const FIXTURE_MODELS = ['wrn16_1', 'wrn16_1_unfused', 'wrn16_1_anon', 'preact18_w8', 'tvresnet_w16', 'external/wrn16_1_opset18'];

export function modelPath(name: string): string {
  return join(MODELS, `${name}.onnx`);
}

export async function wasm(): Promise<void> {
  await useBackend('wasm');
}

/** The committed Fashion-MNIST subset as NHWC float32 in [0, 1] plus labels. */
export function fmnist(split: 'train' | 'test', count?: number): { x: Float32Array; y: Int32Array; n: number; h: number; w: number; c: number } {
  const z = readNpz(join(FIXTURES, 'data', `fmnist-${split}.npz`));
  const xa = z.get('x')!, ya = z.get('y')!;
  const [total, h, w, c] = xa.shape as [number, number, number, number];
  const n = Math.min(count ?? total, total);
  const x = new Float32Array(n * h * w * c);
  const src = xa.data as Uint8Array;
  for (let i = 0; i < x.length; i++) x[i] = src[i]! / 255;
  const y = Int32Array.from((ya.data as BigInt64Array).subarray(0, n), (v) => Number(v));
  return { x, y, n, h, w, c };
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** ||a - b|| / ||b|| */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
