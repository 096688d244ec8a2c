// Training speed of nad-onnx against PyTorch measured in alternation: both sides load the same model and the same
// 2,500 CIFAR-10 images once, then run one training epoch at a time, turn about (A B, then B A), each side
// stopped (SIGSTOP) while the other runs. This machine's speed drifts by up to 2x within minutes, which a
// comparison of two whole runs minutes apart cannot tell from a real difference; epochs seconds apart can.
//   node bench/paired-epochs.mjs [--rounds 6] [--threads 2]      (standalone; `npm run bench` also calls it)
// Prints, per phase (fine-tuning = the teacher's step, NAD = distillation with the teacher's taps), the images/s
// of each side over all measured epochs, the ratio, each round's ratio, and nad-onnx's engine setup (paid once
// per phase by `clean`; the "phase" ratio charges it to a 10-epoch teacher and a 20-epoch distillation).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMachine } from './machine.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function worker(cmd, args) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const failed = new Promise((_, reject) => child.on('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  failed.catch(() => {});
  const read = async () => {
    const r = await Promise.race([lines.next(), failed]);
    if (r.done) throw new Error(`${cmd} ended early`);
    return JSON.parse(r.value);
  };
  return {
    child, read,
    // Resumes the side, runs one epoch, stops it again.
    async epoch(kind) {
      child.kill('SIGCONT');
      child.stdin.write(`${kind}\n`);
      const r = await read();
      child.kill('SIGSTOP');
      return r;
    },
    quit() { child.kill('SIGCONT'); child.stdin.end('quit\n'); },
  };
}

export async function pairedEpochs({ rounds = 6, threads = 2, cifar = process.env.CIFAR_DIR ?? '/tmp/nad-onnx-cifar10', log = (l) => console.error(l) } = {}) {
  const model = join(ROOT, 'fixtures', 'cifar', 'wrn16_1_badnets.onnx'), state = join(ROOT, 'fixtures', 'cifar', 'wrn16_1_badnets.pt');
  if (!existsSync(join(cifar, 'train'))) throw new Error(`${cifar}/train: no CIFAR-10 folder (npm run bench extracts it)`);
  const ours = worker(process.execPath, [join(ROOT, 'bench', 'paired', 'nad-onnx-worker.mjs'), model, join(cifar, 'train'), String(threads)]);
  const py = worker('/usr/bin/python3', [join(ROOT, 'bench', 'paired', 'pytorch_worker.py'), state, join(cifar, 'train'), String(threads)]);
  // Load one side at a time as well.
  py.child.kill('SIGSTOP');
  const readyOurs = await ours.read();
  ours.child.kill('SIGSTOP');
  py.child.kill('SIGCONT');
  const readyPy = await py.read();
  py.child.kill('SIGSTOP');
  if (readyOurs.images !== readyPy.images) throw new Error(`the sides loaded ${readyOurs.images} and ${readyPy.images} images`);
  const result = { rounds, threads, images: readyOurs.images, torch: readyPy.torch, phases: {} };
  try {
    for (const kind of ['ft', 'nad']) {
      // One warm-up epoch per side (nad-onnx builds its engine there; its setup is kept apart).
      const warm = await ours.epoch(kind);
      await py.epoch(kind);
      const rows = [];
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? [ours, py] : [py, ours];
        const got = new Map();
        for (const side of order) got.set(side, await side.epoch(kind));
        const row = { ours_s: got.get(ours).seconds, py_s: got.get(py).seconds };
        rows.push(row);
        log(`paired ${kind} round ${r + 1}/${rounds}: nad-onnx ${(result.images / row.ours_s).toFixed(1)} img/s, PyTorch ${(result.images / row.py_s).toFixed(1)} img/s, ratio ${(row.py_s / row.ours_s).toFixed(3)}`);
      }
      const oursS = rows.reduce((a, x) => a + x.ours_s, 0), pyS = rows.reduce((a, x) => a + x.py_s, 0);
      const epochs = kind === 'ft' ? 10 : 20; // the default phase lengths, for the setup's share
      result.phases[kind] = {
        ours_images_per_s: (rows.length * result.images) / oursS, py_images_per_s: (rows.length * result.images) / pyS,
        ratio: pyS / oursS, round_ratios: rows.map((x) => x.py_s / x.ours_s), setup_s: warm.setup_seconds,
        phase_ratio: (pyS / rows.length) * epochs / ((oursS / rows.length) * epochs + warm.setup_seconds),
      };
    }
  } finally {
    ours.quit();
    py.quit();
  }
  return result;
}

export function printPaired(p, machine) {
  const f = (x, d = 1) => x.toFixed(d);
  console.log(`Paired epochs (${p.rounds} rounds per phase, turn about, the idle side stopped; ${p.images} images, batch 64, ${p.threads} threads each, torch ${p.torch}). Machine: ${machine}`);
  console.log('| phase | nad-onnx | PyTorch | ratio | per round (min / median / max) | nad-onnx engine setup | ratio with setup in a default phase |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [kind, r] of Object.entries(p.phases)) {
    const s = [...r.round_ratios].sort((a, b) => a - b);
    console.log(`| ${kind === 'ft' ? 'fine-tuning (teacher)' : 'NAD step'} | ${f(r.ours_images_per_s)} img/s | ${f(r.py_images_per_s)} img/s | ${f(r.ratio, 3)} | ${f(s[0], 3)} / ${f(s[Math.floor(s.length / 2)], 3)} / ${f(s[s.length - 1], 3)} | ${f(r.setup_s, 2)} s | ${f(r.phase_ratio, 3)} |`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, d) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : d; };
  const machine = describeMachine();
  const p = await pairedEpochs({ rounds: arg('--rounds', 6), threads: arg('--threads', 2) });
  printPaired(p, machine.text);
}
