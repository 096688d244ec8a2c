// Time of one training step (batch 64) of an imported model on the chosen backend, and the profile of
// where it goes. Usage: node bench/step-time.mjs <model.onnx> [backend] [steps]
import * as tf from '@tensorflow/tfjs';
import { TrainableModel, useBackend } from '../dist/index.js';
import { Sgd } from '../dist/nad/sgd.js';
import { trainStep } from '../dist/nad/train-step.js';

const [path, backend = 'wasm', stepsArg = '5'] = process.argv.slice(2);
const info = await useBackend(backend);
const model = TrainableModel.fromFile(path);
const [c, h, w] = model.inputShape;
const x = tf.randomUniform([64, h, w, c]);
const y = tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % model.numClasses), 'int32');
const calib = tf.randomUniform([64, h, w, c]);
const restored = model.restoreFoldedBatchNorm(calib).length;
const sgd = new Sgd({ momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
trainStep(model, sgd, x, y, 0.01); // warm-up
const steps = Number(stepsArg);
const t0 = performance.now();
for (let i = 0; i < steps; i++) trainStep(model, sgd, x, y, 0.01);
const ms = (performance.now() - t0) / steps;
console.log(JSON.stringify({ backend: info.name, model: path, batch: 64, restored_batchnorms: restored, ms_per_step: +ms.toFixed(1), images_per_s: +(64000 / ms).toFixed(1) }));
if (process.env.PROFILE) {
  const prof = await tf.profile(() => trainStep(model, sgd, x, y, 0.01));
  const by = {};
  for (const k of prof.kernels) by[k.name] = (by[k.name] ?? 0) + k.kernelTimeMs;
  console.log(Object.entries(by).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', '));
}
