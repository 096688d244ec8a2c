/**
 * Width-reduced builds of the torchvision classifier families and a plain VGG-style CNN
 * (fixtures/make_architectures.py): each imports, finds at least two taps without --taps, gives
 * onnxruntime's and PyTorch's logits, trains on the onnxruntime engine without falling back, and three SGD
 * steps there change every parameter and running statistic as PyTorch's do.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { onnxruntimeCannotTrain } from '../src/ort-training/training-graph.js';
import { crossEntropyTerm } from '../src/training/loss/cross-entropy.js';
import { createSession, nchwToNhwc, runModel } from '../src/verify/onnx-runtime.js';
import { engineSteps } from './helpers/engine-steps.js';
import { maxAbs, maxAbsDiff, MODELS, readJson, relL2, wasm } from './helpers/fixtures.js';

const ARCH = join(MODELS, 'arch');

interface ArchRecord {
  model: string; class: string; input: [number, number, number]; parameters: number;
  lrs: number[]; momentum: number; nesterov: boolean; weight_decay: number; losses: number[];
  onnx_names: Record<string, { name: string; transposed: boolean }>;
  tensors: Record<string, { offset: number; length: number; shape: number[]; kind: 'delta' | 'value' }>;
}

function load(name: string) {
  const rec = readJson<ArchRecord>(join(ARCH, `${name}.json`));
  const blob = new Float32Array(readFileSync(join(ARCH, `${name}.bin`)).buffer.slice(0));
  const get = (k: string) => blob.subarray(rec.tensors[k]!.offset, rec.tensors[k]!.offset + rec.tensors[k]!.length);
  const [c, h, w] = rec.input;
  const n = rec.tensors.x!.shape[0]!;
  const nchw = Float32Array.from(get('x'));
  return { rec, get, n, c, h, w, nchw, nhwc: nchwToNhwc(nchw, n, c, h, w), labels: Int32Array.from(get('labels')) };
}

function transpose(v: Float32Array, [rows, cols]: number[]): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < rows!; i++) for (let j = 0; j < cols!; j++) out[j * rows! + i] = v[i * cols! + j]!;
  return out;
}

const NAMES = readdirSync(ARCH).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();

beforeAll(wasm);

describe('architectures a model hub holds (width-reduced builds)', () => {
  it('the fixture set covers every family of the issue', () => {
    expect(NAMES.length).toBeGreaterThanOrEqual(12);
  });

  for (const name of NAMES) {
    it(`${name}: imports, taps, logits against onnxruntime and PyTorch, trains on onnxruntime`, async () => {
      const d = load(name);
      const model = TrainableModel.fromFile(join(ARCH, `${name}.onnx`));
      try {
        expect(model.taps.length, `taps of ${name}`).toBeGreaterThanOrEqual(2);
        const ours = tf.tidy(() => Array.from(model.forward(tf.tensor4d(d.nhwc, [d.n, d.h, d.w, d.c]), { training: false }).logits.dataSync()));
        const session = await createSession(readFileSync(join(ARCH, `${name}.onnx`)), name, 1);
        const theirs = (await runModel(session, d.nchw, [d.n, d.c, d.h, d.w])).data;
        await session.release();
        const torch = d.get('logits');
        expect(maxAbsDiff(ours, theirs), 'against onnxruntime').toBeLessThan(1e-4 * Math.max(1, maxAbs(theirs)));
        expect(maxAbsDiff(theirs, torch), 'onnxruntime against PyTorch').toBeLessThan(1e-4 * Math.max(1, maxAbs(torch)));
        expect(onnxruntimeCannotTrain(model, { terms: [crossEntropyTerm(model.numClasses)] })).toBeUndefined();
      } finally {
        model.dispose();
      }
    });

    it(`${name}: three SGD steps on the onnxruntime engine against PyTorch`, async () => {
      const d = load(name);
      const model = TrainableModel.fromFile(join(ARCH, `${name}_unfused.onnx`));
      const before = model.exportWeights();
      const r = await engineSteps(model, 'onnxruntime', { nhwc: d.nhwc, nchw: d.nchw, labels: d.labels, n: d.n }, d.rec.lrs,
        { momentum: d.rec.momentum, nesterov: d.rec.nesterov, weightDecay: d.rec.weight_decay });
      expect(r.name).toBe('onnxruntime');
      const after = model.exportWeights();
      model.dispose();
      r.losses.forEach((l, i) => expect(Math.abs(l.total - d.rec.losses[i]!), `loss ${i}`).toBeLessThan(2e-3 * Math.abs(d.rec.losses[i]!)));
      let worst = { name: '', rel: 0 };
      let checked = 0;
      for (const [k, t] of Object.entries(d.rec.tensors)) {
        if (t.kind !== 'delta') continue;
        const renamed = d.rec.onnx_names[k];
        const expected = renamed?.transposed ? transpose(d.get(k), t.shape) : d.get(k);
        const a = after.get(renamed?.name ?? k), b = before.get(renamed?.name ?? k);
        expect(a, `initializer ${k}`).toBeDefined();
        const got = a!.map((v, i) => v - b![i]!);
        // A shift that the next BatchNorm removes (MobileNet's linear bottlenecks, ShuffleNet's branches) has a
        // zero gradient: PyTorch moves it by rounding (~1e-9) and so must this.
        if (maxAbs(expected) < 1e-6) {
          expect(maxAbs(got), k).toBeLessThan(1e-6);
          continue;
        }
        const rel = relL2(got, expected);
        if (rel > 1e-2) console.log(`  ${k} ${rel.toExponential(2)}`);
        checked++;
        if (rel > worst.rel) worst = { name: k, rel };
      }
      console.log(`${name}: ${checked} tensors, worst relative difference ${worst.rel.toExponential(2)} (${worst.name})`);
      expect(checked).toBeGreaterThan(3);
      expect(worst.rel).toBeLessThan(1e-2);
    });
  }
});
