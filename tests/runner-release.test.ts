/**
 * GraphRunner's `release` (inference outside a gradient tape: each node in its own tidy, a tensor disposed
 * after its last reader) computes what a plain pass computes, bit for bit, and holds fewer tensors at the
 * end of the pass, on every committed fixture and architecture model (aliasing ops such as Identity,
 * Reshape and Flatten included).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { FIXTURE_MODELS, modelPath, MODELS, wasm } from './helpers/fixtures.js';

const MODELS_UNDER_TEST = [...FIXTURE_MODELS, ...readdirSync(join(MODELS, 'arch')).filter((f) => f.endsWith('.onnx')).map((f) => `arch/${f.slice(0, -5)}`)];

describe('GraphRunner release', () => {
  beforeAll(wasm);
  for (const name of MODELS_UNDER_TEST) {
    it(`${name}: same logits and taps, fewer live tensors`, () => {
      const m = TrainableModel.fromFile(modelPath(name));
      try {
        const [c, h, w] = m.inputShape;
        const x = tf.tensor4d(Float32Array.from({ length: 3 * h * w * c }, (_, i) => Math.sin(i * 0.37)), [3, h, w, c]);
        const pass = (release: boolean) => {
          const before = tf.memory().numTensors;
          return tf.tidy(() => {
            const r = m.forward(x, { training: false, withTaps: true, release });
            const live = tf.memory().numTensors - before;
            return { live, logits: r.logits.dataSync().slice(), taps: r.taps.map((t) => t.t.dataSync().slice()) };
          });
        };
        const plain = pass(false), released = pass(true);
        expect(released.logits).toEqual(plain.logits);
        expect(released.taps).toEqual(plain.taps);
        expect(released.live).toBeLessThan(plain.live);
        x.dispose();
      } finally {
        m.dispose();
      }
    });
  }
});
