/** Eval-mode logits of every fixture: tfjs (wasm) against onnxruntime-node, on real images. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { modelBytes } from '../src/export/write-model.js';
import { createSession, nhwcToNchw, runModel } from '../src/verify/onnx-runtime.js';
import { FIXTURE_MODELS, fmnist, maxAbs, maxAbsDiff, modelPath, wasm } from './helpers/fixtures.js';

beforeAll(wasm);

describe('tfjs logits equal onnxruntime logits', () => {
  for (const name of FIXTURE_MODELS) {
    it(name, async () => {
      const model = TrainableModel.fromFile(modelPath(name));
      const d = fmnist('test', 64);
      const logits = tf.tidy(() => Array.from(model.forward(tf.tensor4d(d.x, [d.n, d.h, d.w, d.c]), { training: false }).logits.dataSync()));
      const session = await createSession(modelBytes(model.source), name);
      const ref = await runModel(session, nhwcToNchw(d.x, d.n, d.h, d.w, d.c), [d.n, d.c, d.h, d.w]);
      const diff = maxAbsDiff(logits, ref.data);
      const scale = maxAbs(ref.data);
      console.log(`${name}: max |tfjs - onnxruntime| = ${diff.toExponential(2)} = ${(diff / scale).toExponential(2)} x max |logit| (${scale.toFixed(2)})`);
      expect(diff).toBeLessThanOrEqual(1e-4 * scale);
      await session.release();
      model.dispose();
    });
  }
});
