// Time of one training step (batch 64) of an imported model with the chosen engine, and where it goes.
// Usage: node bench/step-time.mjs <model.onnx> [onnxruntime|tfjs] [steps] [nad|anp]
// anp: one of ANP's gradient passes (batch 128, BatchNorm masks and noise, no weight gradients; onnxruntime only).
// PROFILE=1 prints the busiest op types (onnxruntime's node profile, or tf.profile for tfjs); PROFILE=nodes the busiest nodes.
import { readFileSync, readdirSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { TrainableModel } from '../dist/import/trainable-model.js';
import { useBackend } from '../dist/backend/select-backend.js';
import { Sgd } from '../dist/training/optimizers/sgd.js';
import { TfjsEngine } from '../dist/training/tfjs-engine.js';
import { ParameterStore } from '../dist/training/parameter-store.js';
import { plainStep } from '../dist/training/steps.js';
import { crossEntropyTerm } from '../dist/training/loss/cross-entropy.js';
import { attentionDistillationTerm, teacherTapInput } from '../dist/training/loss/attention-distillation.js';
import { OrtEngine } from '../dist/ort-training/ort-engine.js';
import { anpEngineSpec } from '../dist/defences/anp.js';
import { nhwcToNchw } from '../dist/verify/onnx-runtime.js';

const [path, engineName = 'onnxruntime', stepsArg = '5', mode = 'ft'] = process.argv.slice(2);
await useBackend('wasm');
const model = TrainableModel.fromFile(path);
const [c, h, w] = model.inputShape;
const n = mode === 'anp' ? 128 : 64;
const nhwc = new Float32Array(n * h * w * c).map((_, i) => Math.abs(Math.sin(i * 12.9898)));
const nchw = nhwcToNchw(nhwc, n, h, w, c);
const labels = Int32Array.from({ length: n }, (_, i) => i % model.numClasses);
const calib = tf.tensor4d(nhwc, [n, h, w, c]);
const restored = model.restoreFoldedBatchNorm(calib).length;
const nad = mode === 'nad';
const terms = [crossEntropyTerm(model.numClasses), ...(nad ? model.taps.map((t, k) => attentionDistillationTerm(k, t.name, t.shape, k ? 1000 : 500, 2)) : [])];
// A constant teacher tap (a uniform attention map), as the frozen teacher's output would be fed.
const extras = nad ? Object.fromEntries(model.taps.map((t, k) => [teacherTapInput(k), new Float32Array(n * t.shape[0] * t.shape[1] * t.shape[2]).fill(1)])) : undefined;
const store = new ParameterStore(model);
const sgd = new Sgd({ momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
const profDir = process.env.PROFILE && engineName === 'onnxruntime' ? mkdtempSync(join(tmpdir(), 'nad-prof-')) : undefined;
// ORT_SESSION='{"executionMode":"parallel","interOpNumThreads":2}' tries other onnxruntime session options.
const tuning = profDir || process.env.ORT_SESSION ? { profilePrefix: profDir ? join(profDir, 'p') : undefined, session: JSON.parse(process.env.ORT_SESSION ?? '{}') } : undefined;
const anp = mode === 'anp';
const engine = engineName === 'tfjs' ? new TfjsEngine(model, store, { terms }) : await OrtEngine.create(model, store, anp ? anpEngineSpec(model.numClasses) : { terms }, tuning);
// ANP: masks at 1 and noise at 0 (the clean pass; the perturbed passes cost the same).
const anpValues = anp ? new Map(engine.masks.flatMap((m) => [[m.mask, new Float32Array(m.channels).fill(1)], [m.noiseW, new Float32Array(m.channels)], [m.noiseB, new Float32Array(m.channels)]])) : undefined;
const step = anp ? () => engine.gradients(batch, anpValues) : plainStep(engine, store, sgd);
const batch = { nhwc, nchw, labels, n, extras };
await step(batch, 0.01); // warm-up
const steps = Number(stepsArg);
const t0 = performance.now();
for (let i = 0; i < steps; i++) await step(batch, 0.01);
const ms = (performance.now() - t0) / steps;
console.log(JSON.stringify({ engine: engine.name, model: path, mode, batch: n, restored_batchnorms: restored, ms_per_step: +ms.toFixed(1), images_per_s: +((n * 1000) / ms).toFixed(1) }));
if (profDir) {
  engine.endProfiling();
  const file = readdirSync(profDir).map((f) => join(profDir, f))[0];
  const events = JSON.parse(readFileSync(file, 'utf8'));
  const by = {};
  let runs = 0;
  for (const e of events) {
    if (e.cat === 'Session' && e.name === 'model_run') runs++;
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    by[op] = (by[op] ?? 0) + e.dur / 1000;
  }
  const kernelMs = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')).reduce((a, e) => a + e.dur / 1000, 0);
  console.log(`kernel time per step ${(kernelMs / runs).toFixed(1)} ms of ${ms.toFixed(1)} ms`);
  if (process.env.PROFILE === 'shapes') {
    // op type and output shape: which tensor sizes the time goes to
    const shapes = {};
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const out = (e.args?.output_type_shape ?? []).map((o) => JSON.stringify(Object.values(o)[0])).join(' ');
      const k = `${e.args?.op_name} -> ${out}`;
      const s = (shapes[k] ??= { ms: 0, n: 0 });
      s.ms += e.dur / 1000; s.n++;
    }
    console.log(Object.entries(shapes).sort((a, b) => b[1].ms - a[1].ms).filter(([k]) => !process.env.PROFILE_OP || k.startsWith(process.env.PROFILE_OP + " ")).slice(0, 40).map(([k, v]) => `${(v.ms / runs).toFixed(1).padStart(6)} ms ${String(v.n / runs).padStart(3)}x ${k}`).join('\n'));
  }
  if (process.env.PROFILE === 'nodes') {
    const nodes = {};
    for (const e of events) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) nodes[e.name] = (nodes[e.name] ?? 0) + e.dur / 1000;
    console.log(Object.entries(nodes).sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${k} ${(v / runs).toFixed(1)}`).join('\n'));
  }
  console.log(`per step (${runs} runs): ` + Object.entries(by).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${k} ${(v / runs).toFixed(1)} ms`).join(', '));
  rmSync(profDir, { recursive: true });
} else if (process.env.PROFILE) {
  const prof = await tf.profile(() => step(batch, 0.01));
  const by = {};
  for (const k of prof.kernels) by[k.name] = (by[k.name] ?? 0) + k.kernelTimeMs;
  console.log(Object.entries(by).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', '));
}
await engine.dispose();
