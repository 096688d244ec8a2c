// One side of bench/paired-epochs.mjs: nad-onnx's training loop on a model and 5 % of a CIFAR-10 folder, one
// epoch per command read from stdin ("ft" or "nad"), answering with a JSON line of the epoch's seconds. It
// uses what `clean` uses: loadDataset, BatchNorm restoration, the epoch loop with NAD's augmentation, the
// onnxruntime engine, and for "nad" the attention terms with the frozen teacher's taps computed per batch.
// Setup (engine creation) is timed apart, once per phase, as a phase of `clean` pays it once.
//   node bench/paired/nad-onnx-worker.mjs <model.onnx> <train folder> <threads>
import { createInterface } from 'node:readline';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../dist/backend/select-backend.js';
import { NAD_AUGMENT, normalizeBatch } from '../../dist/data/augment.js';
import { loadDataset } from '../../dist/data/load-dataset.js';
import { Rng } from '../../dist/data/random.js';
import { modelBytes } from '../../dist/export/write-model.js';
import { loadModel } from '../../dist/import/load-model.js';
import { TrainableModel } from '../../dist/import/trainable-model.js';
import { defaultBetas } from '../../dist/defences/nad.js';
import { createEngine } from '../../dist/training/create-engine.js';
import { runEpochs } from '../../dist/training/epoch-loop.js';
import { FrozenModel } from '../../dist/training/frozen-model.js';
import { attentionDistillationTerm, teacherTapInput } from '../../dist/training/loss/attention-distillation.js';
import { crossEntropyTerm } from '../../dist/training/loss/cross-entropy.js';
import { Sgd } from '../../dist/training/optimizers/sgd.js';
import { ParameterStore } from '../../dist/training/parameter-store.js';
import { plainStep } from '../../dist/training/steps.js';
import { useThreads } from '../../dist/verify/onnx-runtime.js';

const [modelPath, trainDir, threads = '2'] = process.argv.slice(2);
await useBackend('wasm');
useThreads(Number(threads));
const source = loadModel(modelPath);
const probe = new TrainableModel(source);
const [c, h, w] = probe.inputShape;
const data = await loadDataset({ path: trainDir, shape: { c, h, w }, numClasses: probe.numClasses, ratio: 0.05, seed: 0, flag: '--data' });
const tapNames = probe.taps.map((t) => t.name);
probe.dispose();

// A phase: a fresh restored copy, its engine and optimiser, made on the first epoch asked for.
async function makePhase(kind) {
  const t0 = performance.now();
  const model = new TrainableModel(source);
  const k = Math.min(256, data.n);
  const calib = tf.tensor4d(normalizeBatch(data.x.subarray(0, k * h * w * c), c), [k, h, w, c]);
  model.restoreFoldedBatchNorm(calib);
  calib.dispose();
  const store = new ParameterStore(model);
  const betas = defaultBetas(model.taps.length);
  const terms = [crossEntropyTerm(model.numClasses), ...(kind === 'nad' ? model.taps.map((t, i) => attentionDistillationTerm(i, t.name, t.shape, betas[i], 2)) : [])];
  const engine = await createEngine(model, store, { terms }, { choice: 'onnxruntime' });
  // The teacher: the model as given (its taps only matter for the cost here).
  const frozen = kind === 'nad' ? await FrozenModel.create(modelBytes(source, undefined, undefined, tapNames), 'teacher', tapNames) : undefined;
  const opt = new Sgd({ momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
  return {
    engine, frozen, step: plainStep(engine, store, opt), rng: new Rng(kind === 'nad' ? 2 : 1),
    extras: frozen ? async (nchw, dims) => Object.fromEntries((await frozen.run(nchw, dims)).map((t, i) => [teacherTapInput(i), t])) : undefined,
    setupSeconds: (performance.now() - t0) / 1000,
  };
}

const phases = {};
process.stdout.write(JSON.stringify({ ready: true, images: data.n }) + '\n');
for await (const line of createInterface({ input: process.stdin })) {
  const kind = line.trim();
  if (kind === 'quit') break;
  if (kind !== 'ft' && kind !== 'nad') throw new Error(`unknown command ${kind}`);
  const fresh = !phases[kind];
  const p = (phases[kind] ??= await makePhase(kind));
  const t0 = performance.now();
  // lr 0.01 throughout: the speed does not depend on it, and no epoch may diverge into NaNs (slower arithmetic).
  await runEpochs(data, { phase: kind, title: kind, epochs: 1, batch: 64, schedule: { kind: 'constant', lr: 0.01 }, augment: NAD_AUGMENT, step: p.step, extras: p.extras }, p.rng);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ kind, seconds, images: data.n, setup_seconds: fresh ? p.setupSeconds : 0 }) + '\n');
}
for (const p of Object.values(phases)) {
  await p.engine.dispose();
  await p.frozen?.release();
}
