/**
 * The onnxruntime training engine against the tfjs engine (itself checked against PyTorch in
 * training-semantics.test.ts): from the same state, one NAD step on the same batch must change every
 * parameter and running statistic the same way, on every fixture architecture (restored BatchNorms,
 * real BatchNorms, MaxPool stem, view() reshape, opset 18 with external data).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { attentionMapsNchw } from '../src/nad/attention.js';
import { createEngine, type EngineChoice } from '../src/nad/engine.js';
import { Sgd } from '../src/nad/sgd.js';
import { nhwcToNchw } from '../src/verify/onnx-runtime.js';
import { fmnist, FIXTURE_MODELS, modelPath, wasm } from './helpers/fixtures.js';

beforeAll(wasm);

export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

async function stepWith(engine: EngineChoice, name: string, steps: number) {
  const model = TrainableModel.fromFile(modelPath(name));
  const d = fmnist('train', 16);
  // Flat backgrounds make the float32 BatchNorm sums of tfjs differ from onnxruntime's exact ones by 1e-5
  // (training-semantics.test.ts); a small fixed texture takes that ill-conditioning out of the comparison.
  for (let i = 0; i < d.x.length; i++) d.x[i] += 0.05 * Math.sin(i * 12.9898);
  const calib = tf.tensor4d(d.x, [16, d.h, d.w, d.c]);
  model.restoreFoldedBatchNorm(calib);
  calib.dispose();
  const before = model.variableState();
  const nchw = nhwcToNchw(d.x, 16, d.h, d.w, d.c);
  // Teacher maps: the model's own taps on a flipped batch, so the attention terms are not zero.
  const flipped = tf.tidy(() => tf.reverse(tf.tensor4d(d.x, [16, d.h, d.w, d.c]), 2));
  const maps = tf.tidy(() => model.forward(flipped as tf.Tensor4D, { training: false, withTaps: true }).taps.map((t) => {
    const v = t.nhwc ? tf.transpose(t.t, [0, 3, 1, 2]) : t.t;
    const [n, c, h, w] = v.shape as number[];
    return attentionMapsNchw(new Float32Array(v.dataSync()), n!, c!, h! * w!, 2);
  }));
  flipped.dispose();
  const betas = model.taps.map((_, i) => (i === 0 ? 500 : 1000));
  const sgd = new Sgd({ momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const e = await createEngine(model, sgd, { choice: engine, distill: { betas, p: 2 } });
  expect(e.name).toBe(engine);
  const losses = [];
  for (let s = 0; s < steps; s++) losses.push(await e.step({ nhwc: d.x, nchw, labels: d.y, n: 16 }, 0.01, maps));
  e.sync();
  await e.dispose();
  const after = model.variableState();
  const momentum = sgd.state(model.trainableVariables());
  sgd.dispose();
  model.dispose();
  const delta = new Map([...after].map(([k, v]) => [k, v.map((x, i) => x - before.get(k)![i]!)]));
  return { delta, losses, momentum };
}

describe('onnxruntime engine matches the tfjs engine', () => {
  for (const name of FIXTURE_MODELS) {
    it(`${name}: one NAD step changes every parameter, statistic and momentum buffer alike`, async () => {
      const ort = await stepWith('onnxruntime', name, 1);
      const tfjs = await stepWith('tfjs', name, 1);
      ort.losses.forEach((l, i) => {
        expect(Math.abs(l.total - tfjs.losses[i]!.total)).toBeLessThan(2e-4 * Math.abs(tfjs.losses[i]!.total));
        expect(l.at.length).toBe(tfjs.losses[i]!.at.length);
      });
      let worst = { name: '', rel: 0 };
      let moved = 0;
      for (const [k, ref] of tfjs.delta) {
        // Running means of restored BatchNorms barely move on the calibration batch (|delta| ~ 1e-7, rounding).
        if (Math.sqrt(ref.reduce((a, v) => a + v * v, 0)) < 1e-5) continue;
        moved++;
        const rel = relL2(ort.delta.get(k)!, ref);
        if (rel > worst.rel) worst = { name: k, rel };
      }
      let worstMomentum = 0;
      tfjs.momentum.forEach((m, i) => {
        expect(!!ort.momentum[i]).toBe(!!m);
        if (m) worstMomentum = Math.max(worstMomentum, relL2(ort.momentum[i]!, m));
      });
      console.log(`${name}: ${moved} tensors moved; worst relative difference ${worst.rel.toExponential(2)} (${worst.name}), momentum ${worstMomentum.toExponential(2)}`);
      expect(moved).toBeGreaterThan(10);
      // tfjs's float32 BatchNorm sums carry ~1e-5 relative error per layer (onnxruntime's are exact to
      // 2e-7), compounded over 8-20 BatchNorms and attention terms weighted 500-1000.
      expect(worst.rel).toBeLessThan(5e-3);
      expect(worstMomentum).toBeLessThan(5e-3);
    });
  }
});
