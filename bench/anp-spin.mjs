// ANP's loop with onnxruntime's idle threads spinning against sleeping, in one process: two engines of the
// same training graph, used in alternating blocks of iterations so that a machine's slow phases hit both.
// Each iteration is ANP's own (src/defences/anp.ts): a batch of 128 drawn and augmented (drawBatch), the noise's ascent
// pass, the perturbed and the clean pass, the masks' step. Inputs are synthetic; the cost does not depend on them.
//   node bench/anp-spin.mjs [model.onnx] [rounds] [block]
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../dist/backend/select-backend.js';
import { Rng } from '../dist/data/random.js';
import { anpEngineSpec, ascendNoise, drawBatch, drawNoise, maskStep } from '../dist/defences/anp.js';
import { TrainableModel } from '../dist/import/trainable-model.js';
import { OrtEngine } from '../dist/ort-training/ort-engine.js';
import { ParameterStore } from '../dist/training/parameter-store.js';
import { describeMachine } from './machine.mjs';

const [path = 'fixtures/cifar/wrn16_1_badnets.onnx', rounds = '8', block = '4'] = process.argv.slice(2);
const machine = describeMachine();
await useBackend('wasm');
const model = TrainableModel.fromFile(path);
const [c, h, w] = model.inputShape;
const n = 128, pool = 2500, size = h * w * c, k = model.numClasses;
const images = new Float32Array(pool * size).map((_, i) => Math.abs(Math.sin(i * 12.9898)));
model.restoreFoldedBatchNorm(tf.tensor4d(images.subarray(0, n * size), [n, h, w, c]));
const store = new ParameterStore(model);
const engines = { sleep: await OrtEngine.create(model, store, anpEngineSpec(k)), spin: await OrtEngine.create(model, store, anpEngineSpec(k), { spin: true }) };
const rng = new Rng(1);
const masks = new Map(engines.sleep.masks.map((m) => [m.mask, new Float32Array(m.channels).fill(1)]));
const momentum = new Map(engines.sleep.masks.map((m) => [m.mask, new Float32Array(m.channels)]));
const r = { eps: 0.4, steps: 1, alpha: 0.2, maskLr: 0.2 };
const mean = Array(c).fill(0.5), std = Array(c).fill(0.25);
const data = { source: 'synthetic', x: images, labels: Int32Array.from({ length: pool }, (_, i) => i % k), n: pool, h, w, c };

async function iteration(engine) {
  const batch = drawBatch(data, n, rng, mean, std);
  const values = new Map([...masks, ...drawNoise(engine.masks, r.eps, rng)]);
  await ascendNoise(engine, batch, values, r);
  await maskStep(engine, batch, masks, momentum, values, r);
}

const ms = { sleep: [], spin: [] };
for (let round = 0; round < Number(rounds); round++) {
  for (const kind of round % 2 ? ['spin', 'sleep'] : ['sleep', 'spin']) {
    await iteration(engines[kind]); // not timed: the other engine's threads may still be spinning down
    for (let i = 0; i < Number(block); i++) {
      const t0 = performance.now();
      await iteration(engines[kind]);
      ms[kind].push(performance.now() - t0);
    }
  }
}
for (const e of Object.values(engines)) await e.dispose();
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`ANP iterations (3 gradient passes of ${n}), ${path}, ${ms.sleep.length} timed per kind in alternating blocks of ${block}`);
console.log(`machine: ${machine.text}`);
console.log(`sleeping threads: median ${median(ms.sleep).toFixed(1)} ms per iteration; spinning threads: median ${median(ms.spin).toFixed(1)} ms`);
console.log(`spinning / sleeping: ${(median(ms.spin) / median(ms.sleep)).toFixed(3)} (${machine.avx512 ? 'AVX-512' : 'no AVX-512'})`);
