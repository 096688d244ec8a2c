/**
 * Training semantics against PyTorch recordings (fixtures/make_references.py): SGD with momentum,
 * Nesterov, weight decay, train-mode BatchNormalization and a learning-rate change, with and without
 * the NAD attention terms; and the attention loss with its gradient on fixed maps.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { attentionLoss, attentionMap, attentionMapsNchw } from '../src/training/attention.js';
import type { EngineChoice } from '../src/training/engine.js';
import { engineSteps, tapsNchw } from './helpers/engine-steps.js';
import { nhwcToNchw } from '../src/verify/onnx-runtime.js';
import { fmnist, FIXTURES, maxAbs, maxAbsDiff, modelPath, readJson, REFERENCE, relL2, wasm } from './helpers/fixtures.js';

interface StepsRecord {
  lrs: number[]; momentum: number; weight_decay: number; losses: number[]; betas?: number[]; p?: number;
  tensors: Record<string, { offset: number; length: number; shape: number[]; kind: 'delta' | 'value' }>;
}

beforeAll(wasm);

async function runSteps(name: 'sgd_steps' | 'nad_steps', override: { weightDecay?: number } = {}, engine: EngineChoice = 'tfjs') {
  const rec = readJson<StepsRecord>(join(REFERENCE, `${name}.json`));
  const ref = new Float32Array(readFileSync(join(REFERENCE, `${name}.bin`)).buffer.slice(0));
  const model = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
  const before = model.exportWeights();
  const d = fmnist('train', 8);
  const x = tf.tensor4d(d.x, [8, d.h, d.w, d.c]);
  const y = tf.tensor1d(d.y, 'int32');
  let teacherTaps: Float32Array[] | undefined;
  let teacher: TrainableModel | undefined;
  if (rec.betas) {
    teacher = TrainableModel.fromFile(join(FIXTURES, 'reference', 'teacher_wrn16_1.onnx'));
    teacherTaps = tapsNchw(teacher, d.x, 8);
  }
  const batch = { nhwc: d.x, nchw: nhwcToNchw(d.x, 8, d.h, d.w, d.c), labels: d.y, n: 8 };
  const r = await engineSteps(model, engine, batch, rec.lrs, { momentum: rec.momentum, nesterov: true, weightDecay: override.weightDecay ?? rec.weight_decay },
    rec.betas ? { betas: rec.betas, p: rec.p!, teacherTaps: teacherTaps! } : undefined);
  expect(r.name).toBe(engine);
  const losses = r.losses.map((l) => l.total);
  const after = model.exportWeights();
  const report: { name: string; rel: number }[] = [];
  for (const [k, t] of Object.entries(rec.tensors)) {
    const a = after.get(k);
    expect(a, `initializer ${k}`).toBeDefined();
    const expected = ref.subarray(t.offset, t.offset + t.length);
    const got = a!.map((v, i) => v - before.get(k)![i]!);
    const rel = relL2(got, expected);
    report.push({ name: k, rel });
  }
  model.dispose();
  teacher?.dispose();
  x.dispose();
  y.dispose();
  return { rec, losses, report };
}

/**
 * PyTorch and tfjs both sum BatchNorm statistics naively in float32: on this batch (8 Fashion-MNIST images,
 * 8,192 values per channel) their first BatchNorm's outputs are off by up to 2e-5 relative, in the same way,
 * while onnxruntime's reductions are exact to 2e-7 (measured against float64). The recorded steps amplify
 * that into the weight changes, so the onnxruntime engine sits further from PyTorch here (measured worst
 * 5.4e-3 SGD / 7.6e-3 NAD, loss 5e-4) than tfjs does (2.0e-3 / 1.8e-4); the engines agree to < 1e-4 on
 * batches where it does not matter (ort-engine.test.ts).
 */
const TOLERANCE = { tfjs: { loss: 5e-4, weights: 5e-3 }, onnxruntime: { loss: 2e-3, weights: 1e-2 } };

describe('training semantics match PyTorch', () => {
  const recorded: ['sgd_steps' | 'nad_steps', string][] = [
    ['sgd_steps', 'three SGD steps: weight changes and running statistics'],
    ['nad_steps', 'three NAD steps (CE + attention terms towards a frozen teacher)'],
  ];
  for (const [name, title] of recorded) for (const engine of ['tfjs', 'onnxruntime'] as const) {
    it(`${engine} engine: ${title}`, async () => {
      const { rec, losses, report } = await runSteps(name, {}, engine);
      const worst = report.reduce((a, b) => (b.rel > a.rel ? b : a));
      console.log(`${engine} ${name}: worst relative difference ${worst.rel.toExponential(2)} (${worst.name})`);
      const tol = TOLERANCE[engine];
      losses.forEach((l, i) => expect(Math.abs(l - rec.losses[i]!)).toBeLessThan(tol.loss * Math.abs(rec.losses[i]!)));
      for (const r of report) expect(r.rel, r.name).toBeLessThan(tol.weights);
    });
  }

  it('the comparison can fail: without weight decay the weight changes no longer match', async () => {
    const { report } = await runSteps('sgd_steps', { weightDecay: 0 });
    const worst = report.reduce((a, b) => (b.rel > a.rel ? b : a));
    console.log(`without weight decay: worst relative difference ${worst.rel.toExponential(2)} (${worst.name})`);
    expect(worst.rel).toBeGreaterThan(5e-2);
  });

  it('attention loss and its gradient (p = 1 and p = 2)', () => {
    const cases = readJson<{ p: number; shape: number[]; fs: number[]; ft: number[]; loss: number; grad: number[] }[]>(join(REFERENCE, 'attention.json'));
    for (const c of cases) {
      const { loss, grad } = tf.tidy(() => {
        const fs = tf.tensor(c.fs, c.shape), ft = tf.tensor(c.ft, c.shape);
        const f = (s: tf.Tensor) => attentionLoss(attentionMap(s, 1, c.p), attentionMap(ft, 1, c.p));
        const g = tf.grad(f)(fs);
        return { loss: f(fs).dataSync()[0]!, grad: Array.from(g.dataSync()) };
      });
      // The plain-JS maps used for onnxruntime outputs equal the tfjs ones.
      const [n, ch, h, w] = c.shape as [number, number, number, number];
      const js = attentionMapsNchw(Float32Array.from(c.ft), n, ch, h * w, c.p);
      const ref = tf.tidy(() => Array.from(attentionMap(tf.tensor(c.ft, c.shape), 1, c.p).dataSync()));
      expect(maxAbsDiff(js, ref)).toBeLessThan(1e-6);
      expect(Math.abs(loss - c.loss)).toBeLessThan(1e-5 * c.loss);
      expect(maxAbsDiff(grad, c.grad)).toBeLessThan(1e-4 * maxAbs(c.grad));
    }
  });

  it('an all-zero feature map (a dead ReLU tap) gives a zero map and the gradient PyTorch gives (0 there, not NaN)', () => {
    // torch 1.13: the NAD attention loss of these tensors, fs.grad after backward() (p = 1, then p = 2).
    const torchGrad: Record<number, number[]> = {
      1: [0, 0, 0, 0, 0, 0, 0, 0, 0.04169667512178421, 0.01808662712574005, 0, -0.09649783372879028, 0.04169667512178421, 0.01808662712574005, -0.09281554818153381, 0],
      2: [0, 0, 0, 0, 0, 0, 0, 0, 0.12289111316204071, -0.00214262749068439, 0, -0.2069299966096878, 0.049156446009874344, -0.00857050996273756, -0.05554698780179024, 0],
    };
    for (const p of [1, 2]) {
      const grad = tf.tidy(() => {
        // Sample 0 is all zeros; sample 1 is not.
        const fs = tf.tensor4d([0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.1, 0, 0.3, 0.2, 0.4, 0.1, 0], [2, 2, 2, 2]);
        const ft = tf.tensor4d([1, 2, 3, 4, 4, 3, 2, 1, 1, 1, 1, 1, 0.5, 0.2, 0.3, 0.9], [2, 2, 2, 2]);
        expect(maxAbs(attentionMap(fs, 1, p).dataSync().slice(0, 4))).toBe(0);
        return Array.from(tf.grad((s: tf.Tensor) => attentionLoss(attentionMap(s, 1, p), attentionMap(ft, 1, p)))(fs).dataSync());
      });
      expect(grad.every(Number.isFinite), `p = ${p}: ${grad}`).toBe(true);
      expect(maxAbsDiff(grad, torchGrad[p]!)).toBeLessThan(1e-6);
    }
  });
});

describe('train-mode BatchNormalization', () => {
  it('normalises with the biased batch variance and updates running_var with the unbiased one (PyTorch)', async () => {
    const { buildModel } = await import('./helpers/onnx-builder.js');
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const bytes = buildModel({
      inputs: [{ name: 'x', dims: [2, 1, 1, 1] }], outputs: ['y'],
      nodes: [{ op: 'BatchNormalization', inputs: ['x', 's', 'b', 'm', 'v'], outputs: ['y'], attrs: { epsilon: { float: 1e-5 }, momentum: { float: 0.9 } } }],
      inits: [{ name: 's', dims: [1], float: [1] }, { name: 'b', dims: [1], float: [0] }, { name: 'm', dims: [1], float: [0] }, { name: 'v', dims: [1], float: [1] }],
    });
    const path = join(mkdtempSync(join(tmpdir(), 'nad-bn-')), 'bn.onnx');
    writeFileSync(path, bytes);
    const { loadModel } = await import('../src/import/load-model.js');
    const { buildGraph } = await import('../src/import/graph.js');
    const { createParameters } = await import('../src/import/parameters.js');
    const { GraphRunner } = await import('../src/import/interpreter.js');
    const graph = buildGraph(loadModel(path));
    const params = createParameters(graph);
    const runner = new GraphRunner(graph, params);
    const x = tf.tensor4d([1, 3], [2, 1, 1, 1]); // mean 2, biased var 1, unbiased var 2
    const r = runner.run(x, { training: true });
    const y = Array.from(r.outputs[0]!.t.dataSync());
    expect(y[0]).toBeCloseTo(-1 / Math.sqrt(1 + 1e-5), 5);
    const mean = r.statUpdates[0]!.batchMean.dataSync()[0]!, v = r.statUpdates[0]!.batchVarUnbiased.dataSync()[0]!;
    expect(mean).toBeCloseTo(2, 6);
    expect(v).toBeCloseTo(2, 6);
    // Through the model's update path: running_var = 0.9 * 1 + 0.1 * 2.
    const { TrainableModel } = await import('../src/import/trainable-model.js');
    TrainableModel.prototype.applyRunningStats.call({ params } as unknown as InstanceType<typeof TrainableModel>, r.statUpdates);
    expect(params.get('v')!.variable.dataSync()[0]).toBeCloseTo(1.1, 6);
    expect(params.get('m')!.variable.dataSync()[0]).toBeCloseTo(0.2, 6);
  });
});
