/**
 * A freshly initialised network exported by PyTorch shares one initializer between every BatchNorm's weight
 * and running_var (ones) and between biases and running means (zeros), forwarded through Identity nodes.
 * Training must treat them as the separate parameters they were: tied, one tensor was updated both as a
 * scale and as a running variance, and the fine-tuned PreAct-18 of the benchmark answered NaN.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { modelBytes } from '../src/export/write-model.js';
import { onnx } from '../src/onnx/onnx-schema.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import type { EngineChoice } from '../src/training/engine.js';
import { engineSteps } from './helpers/engine-steps.js';
import { createSession, nhwcToNchw, runModel } from '../src/verify/onnx-runtime.js';
import { fmnist, maxAbs, maxAbsDiff, modelPath, wasm } from './helpers/fixtures.js';

beforeAll(wasm);

const FILE = modelPath('preact18_w8_init');

describe('initializers shared through Identity nodes (PyTorch deduplication)', () => {
  it('the fixture really shares them, and the import gives each use its own parameter', () => {
    const proto = onnx.ModelProto.decode(new Uint8Array(readFileSync(FILE)));
    const identities = proto.graph!.node!.filter((n) => n.opType === 'Identity');
    expect(identities.map((n) => n.output![0])).toContain('layer1.1.bn1.running_var');

    const model = TrainableModel.fromFile(FILE);
    expect(model.graph.nodes.some((n) => n.opType === 'Identity')).toBe(false);
    expect(model.source.untied.size).toBe(identities.length);
    const scale = model.params.get('layer1.1.bn1.weight')!, variance = model.params.get('layer1.1.bn1.running_var')!;
    expect(scale.role).toBe('bn-scale');
    expect(variance.role).toBe('bn-var');
    expect(variance.trainable).toBe(false);
    expect(scale.variable).not.toBe(variance.variable);
    model.dispose();
  });

  for (const engine of ['onnxruntime', 'tfjs'] as EngineChoice[]) {
    it(`${engine}: fine-tuning keeps them apart, and the written model (one initializer per former Identity) answers like the trained model`, async () => {
      const model = TrainableModel.fromFile(FILE);
      const d = fmnist('train', 32);
      const calib = tf.tensor4d(d.x, [d.n, d.h, d.w, d.c]);
      model.restoreFoldedBatchNorm(calib);
      const nchw = nhwcToNchw(d.x, d.n, d.h, d.w, d.c);
      const r = await engineSteps(model, engine, { nhwc: d.x, nchw, labels: d.y, n: d.n }, [0.1, 0.1, 0.1], { momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
      for (const l of r.losses) expect(Number.isFinite(l.total)).toBe(true);

      const weights = model.exportWeights();
      const scale = weights.get('layer1.1.bn1.weight')!, variance = weights.get('layer1.1.bn1.running_var')!;
      expect(maxAbsDiff(scale, variance)).toBeGreaterThan(1e-3);
      for (const [k, w] of weights) if (k.endsWith('running_var')) expect(Math.min(...w), k).toBeGreaterThan(0);

      const bytes = modelBytes(model.source, weights);
      const written = onnx.ModelProto.decode(bytes).graph!;
      expect(written.node!.filter((n) => n.opType === 'Identity')).toHaveLength(0);
      const init = new Map(written.initializer!.map((t) => [t.name!, t]));
      for (const [name, src] of model.source.untied) {
        expect(init.get(name)?.dims!.map(Number), name).toEqual(init.get(src)!.dims!.map(Number));
      }
      const got = await runModel(await createSession(bytes, 'written'), nchw, [d.n, d.c, d.h, d.w]);
      const want = tf.tidy(() => model.forward(calib, { training: false }).logits.dataSync());
      expect(maxAbsDiff(got.data, want)).toBeLessThan(1e-4 * Math.max(1, maxAbs(want)));
      calib.dispose();
      model.dispose();
    });
  }

  it('unchanged weights: the untied file computes what the original computes', async () => {
    const model = TrainableModel.fromFile(FILE);
    const d = fmnist('test', 16);
    const nchw = nhwcToNchw(d.x, d.n, d.h, d.w, d.c);
    const original = await runModel(await createSession(model.source.bytes, 'original'), nchw, [d.n, d.c, d.h, d.w]);
    const untied = await runModel(await createSession(modelBytes(model.source), 'untied'), nchw, [d.n, d.c, d.h, d.w]);
    expect(maxAbsDiff(untied.data, original.data)).toBe(0);
    model.dispose();
  });
});
