/** `eval` reproduces the ACC / ASR PyTorch recorded for every fixture (fixtures/models/metrics.json). */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.js';
import { FIXTURES, MODELS, modelPath, readJson } from './helpers/fixtures.js';
import { schemaErrors } from './helpers/schemas.js';

const recorded = readJson<{ target: number; metrics: Record<string, { acc: number; acc_all: number; asr: number }> }>(join(MODELS, 'metrics.json'));

describe('eval matches PyTorch within 0.5 points', () => {
  for (const [name, m] of Object.entries(recorded.metrics)) {
    it(name, async () => {
      const r = await cli(['eval', modelPath(name), '--data', join(FIXTURES, 'data', 'fmnist-test.npz'), '--trigger', 'grid', '--target', String(recorded.target), '--json']);
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout);
      expect(schemaErrors('metrics.schema.json', got)).toBe('');
      expect(Math.abs(got.acc - m.acc)).toBeLessThanOrEqual(0.5);
      expect(Math.abs(got.acc_all - m.acc_all)).toBeLessThanOrEqual(0.5);
      expect(Math.abs(got.asr - m.asr)).toBeLessThanOrEqual(0.5);
    });
  }

  it('without a trigger the trigger-based fields are null', async () => {
    const r = await cli(['eval', modelPath('wrn16_1'), '--data', join(FIXTURES, 'data', 'fmnist-test.npz'), '--json']);
    const got = JSON.parse(r.stdout);
    expect(got.asr).toBeNull();
    expect(got.ra).toBeNull();
    expect(got.target_recall).toBeNull();
    expect(got.acc).toBe(got.acc_all);
  });
});
