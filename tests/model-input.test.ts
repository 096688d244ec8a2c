/** The evaluation's input preparation: one pass, reused buffers, gathered rows; the same values as before. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeBatch } from '../src/data/augment.js';
import { selectRows } from '../src/data/dataset.js';
import { loadDataset } from '../src/data/load-dataset.js';
import { toModelInput } from '../src/data/model-input.js';
import { predict } from '../src/verify/metrics.js';
import { createSession, nhwcToNchw } from '../src/verify/onnx-runtime.js';
import { parseTrigger } from '../src/verify/triggers.js';
import { FIXTURES, modelPath } from './helpers/fixtures.js';
import { readFileSync } from 'node:fs';

describe('toModelInput', () => {
  const n = 5, h = 4, w = 3, c = 3;
  const x = Float32Array.from({ length: n * h * w * c }, (_, i) => ((i * 37) % 101) / 100);
  it('equals normalising, then transposing, bit for bit, and writes into the buffer given', () => {
    const mean = [0.4914, 0.4822, 0.4465], std = [0.247, 0.243, 0.261];
    const out = new Float32Array(n * h * w * c + 7).subarray(0, n * h * w * c);
    const got = toModelInput(x, n, h, w, c, mean, std, out);
    expect(got).toBe(out);
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(nhwcToNchw(normalizeBatch(x, c, mean, std), n, h, w, c).buffer))).toBe(true);
    expect(Array.from(toModelInput(x, n, h, w, c))).toEqual(Array.from(nhwcToNchw(x, n, h, w, c)));
    expect(Array.from(toModelInput(x, n, h, w, c, [0.5, 0.5, 0.5]))).toEqual(Array.from(nhwcToNchw(normalizeBatch(x, c, [0.5, 0.5, 0.5]), n, h, w, c)));
  });
});

describe('predict over gathered rows', () => {
  it('gives the predictions of the copied subset, with a trigger and across batch boundaries', async () => {
    const d = await loadDataset({ path: join(FIXTURES, 'data', 'fmnist-test.npz'), shape: { c: 1, h: 32, w: 32 }, numClasses: 10, flag: '--test' });
    const session = await createSession(readFileSync(modelPath('wrn16_1')), 'wrn16_1');
    const trigger = await parseTrigger('grid', { c: 1, h: 32, w: 32 });
    const rows = Array.from({ length: d.n }, (_, i) => i).filter((i) => d.labels[i] !== 0).reverse().slice(0, 300);
    const opts = { batch: 64 };
    const direct = await predict(session, selectRows(d, rows), opts, trigger);
    const gathered = await predict(session, d, opts, trigger, rows);
    expect(Array.from(gathered)).toEqual(Array.from(direct));
    // The trigger matters here, so the comparison can fail.
    const plain = await predict(session, d, opts, undefined, rows);
    expect(Array.from(plain)).not.toEqual(Array.from(gathered));
  });
});
