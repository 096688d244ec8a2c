/**
 * Dropout in training drops units with its ratio from the seeded stream, the same on both engines; it is the
 * identity at evaluation and when no masks are drawn.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TrainableModel } from '../src/import/trainable-model.js';
import { Rng } from '../src/data/random.js';
import { drawDropoutMasks } from '../src/training/dropout-masks.js';
import type { EngineChoice } from '../src/training/engine.js';
import { nhwcToNchw } from '../src/verify/onnx-runtime.js';
import { engineSteps } from './helpers/engine-steps.js';
import { buildModel, randoms } from './helpers/onnx-builder.js';
import { relL2, wasm } from './helpers/fixtures.js';

beforeAll(wasm);

function dropoutModel(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'nad-dropout-')), 'm.onnx');
  writeFileSync(path, buildModel({
    inputs: [{ name: 'x', dims: [6, 3, 8, 8] }], outputs: ['logits'],
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['a'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: 'Relu', inputs: ['a'], outputs: ['r'] },
      { op: 'Dropout', inputs: ['r', 'ratio'], outputs: ['d'] },
      { op: 'GlobalAveragePool', inputs: ['d'], outputs: ['g'] }, { op: 'Flatten', inputs: ['g'], outputs: ['f'] },
      { op: 'Dropout', inputs: ['f', 'ratio2'], outputs: ['fd'] },
      { op: 'Gemm', inputs: ['fd', 'w3', 'b3'], outputs: ['logits'], attrs: { transB: 1 } },
    ],
    inits: [
      { name: 'w1', dims: [4, 3, 3, 3], float: Array.from(randoms(108, 1), (v) => v * 0.5) }, { name: 'b1', dims: [4], float: [0.1, -0.1, 0.05, 0] },
      { name: 'ratio', dims: [], float: [0.5] }, { name: 'ratio2', dims: [], float: [0.25] },
      { name: 'w3', dims: [5, 4], float: Array.from(randoms(20, 3)) }, { name: 'b3', dims: [5], float: [0, 0.1, 0.2, 0.3, 0.4] },
    ],
  }));
  return path;
}

describe('Dropout in training', () => {
  it('finds each dropping node with its ratio and input shape', () => {
    const m = TrainableModel.fromFile(dropoutModel());
    expect(m.dropoutSites).toEqual([{ node: 'n2', ratio: 0.5, dims: [4, 8, 8] }, { node: 'n5', ratio: 0.25, dims: [4] }]);
    m.dispose();
  });

  it('masks hold 0 with the ratio and 1 / (1 - ratio) otherwise, and the same seed draws the same masks', () => {
    const sites = [{ node: 'a', ratio: 0.3, dims: [16, 8, 8] }];
    const m = drawDropoutMasks(sites, 32, new Rng(5)).a!;
    expect(m.length).toBe(32 * 16 * 64);
    const zeros = m.filter((v) => v === 0).length / m.length;
    expect(Math.abs(zeros - 0.3)).toBeLessThan(0.01);
    expect(m.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-6)).toBe(true);
    expect(drawDropoutMasks(sites, 32, new Rng(5)).a).toEqual(m);
  });

  async function step(engine: EngineChoice, withMasks: boolean) {
    const model = TrainableModel.fromFile(dropoutModel());
    const n = 6, x = randoms(n * 3 * 64, 7), labels = Int32Array.from([0, 1, 2, 3, 4, 0]);
    const dropout = withMasks ? drawDropoutMasks(model.dropoutSites, n, new Rng(9)) : undefined;
    const before = model.variableState();
    const r = await engineSteps(model, engine, { nhwc: x, nchw: nhwcToNchw(x, n, 8, 8, 3), labels, n, dropout }, [0.1], { momentum: 0.9, nesterov: true, weightDecay: 0 });
    expect(r.name).toBe(engine);
    const delta = new Map([...model.variableState()].map(([k, v]) => [k, v.map((w, i) => w - before.get(k)![i]!)]));
    model.dispose();
    return { loss: r.losses[0]!.total, delta };
  }

  it('one SGD step with drawn masks is the same on both engines, and differs from a step without dropping', async () => {
    const ort = await step('onnxruntime', true), ref = await step('tfjs', true), plain = await step('onnxruntime', false);
    expect(Math.abs(ort.loss - ref.loss)).toBeLessThan(1e-5 * Math.abs(ref.loss));
    expect(Math.abs(ort.loss - plain.loss)).toBeGreaterThan(1e-3);
    for (const [k, d] of ref.delta) {
      expect(relL2(ort.delta.get(k)!, d), k).toBeLessThan(1e-4);
      expect(relL2(plain.delta.get(k)!, d), k).toBeGreaterThan(1e-2);
    }
  });
});
