// The architectures bench (issue "Architectures a model hub holds"): for each full-size export in bench/out/arch
// (made by bench/export_architectures.py), `inspect` (taps and the rule that found them, training engine),
// logits of the imported model against onnxruntime on 8 test images, and a 1 + 1-epoch `clean` (NAD: one
// teacher epoch, one distillation epoch) on 100 CIFAR-10 training images with its step time and peak RSS.
// A clean that diverges at the default lr is repeated at --lr 0.001 (the table says so).
// Writes bench/results/architectures.json and the table between <!-- architectures-table --> markers in
// bench/README.md. Run through bench/architectures.sh; time it with nothing else running.
//   node bench/architectures.mjs [name ...]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../dist/backend/select-backend.js';
import { inspect } from '../dist/inspect.js';
import { TrainableModel } from '../dist/import/trainable-model.js';
import { createSession, nhwcToNchw, runModel } from '../dist/verify/onnx-runtime.js';
import { readNpz } from '../dist/data/numpy-files.js';

const DIR = 'bench/out/arch';
const RESULTS = 'bench/results/architectures.json';
const names = process.argv.slice(2).length ? process.argv.slice(2) : readdirSync(DIR).filter((f) => f.endsWith('.onnx') && !f.includes('.clean')).map((f) => f.slice(0, -5)).sort();
const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
const machine = { cpu: cpus()[0]?.model ?? 'unknown', avx512: /\bavx512f\b/.test(cpuinfo), cores: cpus().length };
await useBackend('wasm');

const results = existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, 'utf8')) : {};
for (const name of names) {
  const path = join(DIR, `${name}.onnx`);
  const info = await inspect(path);
  const size = info.input.shape[2];
  const test = readNpz(join(DIR, `test${size}.npz`)).get('x');
  const n = 8, [h, w, c] = test.shape.slice(1);
  const nhwc = Float32Array.from(test.data.subarray(0, n * h * w * c), (v) => v / 255);
  const nchw = nhwcToNchw(nhwc, n, h, w, c);
  const model = TrainableModel.fromFile(path);
  const ours = tf.tidy(() => Array.from(model.forward(tf.tensor4d(nhwc, [n, h, w, c]), { training: false }).logits.dataSync()));
  model.dispose();
  const session = await createSession(readFileSync(path), path, 2);
  const theirs = (await runModel(session, nchw, [n, c, h, w])).data;
  await session.release();
  const scale = Math.max(...Array.from(theirs, Math.abs));
  const parity = Math.max(...ours.map((v, i) => Math.abs(v - theirs[i]))) / Math.max(scale, 1e-12);

  const report = join(DIR, `${name}.report.json`);
  // A run that diverges at NAD's lr 0.1 (random weights) is repeated at lr 0.001 for its step time and memory.
  let failure = null, lr = null, seconds = 0;
  for (const tryLr of [null, 0.001]) {
    const t0 = performance.now();
    try {
      execFileSync('node', ['dist/cli/main.js', 'clean', path, '--method', 'nad', '--data', join(DIR, `train${size}.npz`), '--test', join(DIR, `test${size}.npz`),
        '--teacher-epochs', '1', '--epochs', '1', ...(tryLr ? ['--lr', String(tryLr)] : []), '--out', join(DIR, `${name}.clean.onnx`), '--report', report, '--quiet'],
        { stdio: ['ignore', 'ignore', 'pipe'] });
      failure = null;
      lr = tryLr;
    } catch (e) {
      failure = String(e.stderr ?? e.message).trim().split('\n')[0];
    }
    seconds = (performance.now() - t0) / 1000;
    if (!failure || !/diverged/.test(failure)) break;
    console.log(`${name}: ${failure}; again at --lr 0.001`);
  }
  const r = failure ? {} : JSON.parse(readFileSync(report, 'utf8'));
  const perStep = (phase) => {
    const l = r.losses?.[phase]?.[0];
    return l ? (l.seconds / l.images) * 64 : null;
  };
  results[name] = {
    machine, input: info.input.shape.slice(1), parameters: info.parameters, ops: Object.keys(info.ops).length,
    taps: info.taps.map((t) => ({ shape: t.shape, rule: t.rule })), inspect_engine: info.engine.name,
    parity_max_rel: parity, engine: r.engine ?? null, teacher_step_s: perStep('teacher'), nad_step_s: perStep('nad'),
    peak_rss_mb: r.timings?.peak_rss_mb ?? null, clean_seconds: seconds, clean_failure: failure, clean_lr: lr, acc_before: r.before?.acc_all ?? r.before?.acc, acc_after: r.after?.acc_all ?? r.after?.acc,
  };
  console.log(name, JSON.stringify(results[name]));
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(RESULTS, JSON.stringify(results, null, 1));
}

const f = (v, d = 2) => (v === null || v === undefined ? '–' : v.toFixed(d));
const rows = Object.entries(results).sort(([a], [b]) => a.localeCompare(b));
const machines = [...new Set(rows.map(([, x]) => `${x.machine.cpu}, ${x.machine.avx512 ? 'AVX-512' : 'no AVX-512'}, ${x.machine.cores} cores`))];
const lines = [
  `Machine${machines.length > 1 ? 's' : ''}: ${machines.join('; ')}. Random weights, 10 classes; \`clean\` = NAD with 1 teacher epoch and 1 distillation epoch on 100 CIFAR-10 training images (batch 64), evaluated on 500 test images. Step = seconds per 64 images of that phase's epoch (the first step included). Parity: largest |logit difference| of the imported model against onnxruntime on 8 test images, relative to the largest |logit|.`,
  '',
  '| architecture | input | parameters | taps (rule) | engine (inspect / clean) | parity | teacher step s | NAD step s | peak RSS MB | clean s | clean |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(([name, x]) => `| ${name} | ${x.input.join('×')} | ${x.parameters.toLocaleString('en-US')} | ${x.taps.length} (${[...new Set(x.taps.map((t) => t.rule))].join(', ')}) | ${x.inspect_engine} / ${x.engine ? Object.values(x.engine).join(', ') : '–'} | ${x.parity_max_rel.toExponential(1)} | ${f(x.teacher_step_s)} | ${f(x.nad_step_s)} | ${f(x.peak_rss_mb, 0)} | ${f(x.clean_seconds, 0)} | ${x.clean_failure ? x.clean_failure.replace(/\|/g, '/') : x.clean_lr ? `ok at --lr ${x.clean_lr} (diverged at 0.1)` : 'ok'} |`),
];
const readme = readFileSync('bench/README.md', 'utf8');
const start = '<!-- architectures-table -->', end = '<!-- /architectures-table -->';
const i = readme.indexOf(start), j = readme.indexOf(end);
if (i < 0 || j < 0) throw new Error('bench/README.md has no architectures-table markers');
writeFileSync('bench/README.md', readme.slice(0, i + start.length) + '\n' + lines.join('\n') + '\n' + readme.slice(j));
console.log(`bench/README.md: ${rows.length} architectures`);
