/** The library API pipelines use: import { clean, evaluate, inspect } from 'nad-onnx'. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clean, evaluate, inspect, BadInputError, DEFAULT_METHOD, type EpochProgress } from '../src/index.js';
import { FIXTURES, modelPath } from './helpers/fixtures.js';
import { cli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'nad-lib-'));
const DATA = join(FIXTURES, 'data', 'fmnist-clean');
const TEST = join(FIXTURES, 'data', 'fmnist-test.npz');

describe('library API', () => {
  it('inspect returns the taps and shapes', async () => {
    const r = await inspect(modelPath('preact18_w8'));
    expect(r.taps.map((t) => t.shape)).toEqual([[8, 32, 32], [16, 16, 16], [32, 8, 8], [64, 4, 4]]);
    expect(r.ops.Conv).toBe(20);
  });

  it('evaluate gives what the CLI prints', async () => {
    const m = await evaluate({ model: modelPath('wrn16_1'), data: TEST, trigger: 'grid', target: 0 });
    const c = JSON.parse((await cli(['eval', modelPath('wrn16_1'), '--data', TEST, '--trigger', 'grid', '--target', '0', '--json'])).stdout);
    expect(m).toEqual(c);
  });

  it('clean reports progress per phase and writes the model', async () => {
    const seen = new Set<string>();
    const out = join(dir, 'lib.onnx');
    const r = await clean({
      model: modelPath('wrn16_1'), method: 'nad', data: DATA, ratio: 0.2, test: TEST, trigger: 'grid', target: 0, teacherEpochs: 1, epochs: 1, lr: 0.01, out,
      onProgress: (p: EpochProgress) => seen.add(p.phase),
    });
    expect([...seen].sort()).toEqual(['eval', 'nad', 'teacher']);
    expect(r.output.written).toBe(true);
    expect(existsSync(out)).toBe(true);
    expect(r.before.asr).toBeGreaterThan(90);
  });

  it('without a method, clean runs the default, ft (the best worst case of the efficacy table)', async () => {
    expect(DEFAULT_METHOD).toBe('ft');
    const r = await clean({ model: modelPath('wrn16_1'), data: DATA, ratio: 0.2, epochs: 1, lr: 0.01, out: join(dir, 'default.onnx') });
    expect(r.method).toBe('ft');
    expect(r.parameters).toMatchObject({ epochs: 1, lr: 0.01 });
    expect(Object.keys(r.losses)).toEqual(['ft']);
    expect(r.parameters).not.toHaveProperty('teacher_epochs');
  });

  it('clean is cancellable with an AbortSignal: it rejects and writes nothing', async () => {
    const ac = new AbortController();
    const out = join(dir, 'aborted.onnx');
    const run = clean({
      model: modelPath('wrn16_1'), method: 'nad', data: DATA, ratio: 0.2, teacherEpochs: 2, epochs: 2, out, signal: ac.signal,
      onProgress: () => ac.abort(),
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(existsSync(out)).toBe(false);
  });

  it('bad options are typed errors with exit code 2', async () => {
    await expect(clean({ model: modelPath('wrn16_1'), data: DATA, out: join(dir, 'x.onnx'), ratio: 2 })).rejects.toBeInstanceOf(BadInputError);
    await expect(clean({ model: modelPath('wrn16_1'), data: DATA, out: join(dir, 'x.onnx'), ratio: 2 })).rejects.toMatchObject({ exitCode: 2 });
  });
});
