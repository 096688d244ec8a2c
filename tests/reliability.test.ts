/** Reliability: no tensor leaks across training steps; interrupted runs leave nothing behind; damaged weights are bad input. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { killAtPhase, runCli } from './helpers/interrupted-run.js';
import * as tf from '../src/tf.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { onnx } from '../src/onnx/onnx-schema.js';
import { cli, isOneLineError } from './helpers/cli.js';
import { Sgd } from '../src/training/optimizers/sgd.js';
import { ParameterStore } from '../src/training/parameter-store.js';
import { TfjsEngine } from '../src/training/tfjs-engine.js';
import { plainStep } from '../src/training/steps.js';
import { crossEntropyTerm } from '../src/training/loss/cross-entropy.js';
import { attentionDistillationTerm, teacherTapInput } from '../src/training/loss/attention-distillation.js';
import { nhwcToNchw } from '../src/verify/onnx-runtime.js';
import { tapsNchw } from './helpers/engine-steps.js';
import { FIXTURES, fmnist, modelPath, ROOT, wasm } from './helpers/fixtures.js';

beforeAll(wasm);

describe('memory', () => {
  it('tf.memory() stays flat over NAD steps on the tfjs engine (restored BatchNorms, teacher taps, momentum)', async () => {
    const model = TrainableModel.fromFile(modelPath('wrn16_1'));
    const d = fmnist('train', 16);
    const x = tf.tensor4d(d.x, [d.n, d.h, d.w, d.c]);
    const y = tf.tensor1d(d.y, 'int32');
    model.restoreFoldedBatchNorm(x);
    const teacher = TrainableModel.fromFile(modelPath('wrn16_1'));
    const store = new ParameterStore(model);
    const sgd = new Sgd({ momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
    const terms = [crossEntropyTerm(model.numClasses), ...model.taps.map((t, k) => attentionDistillationTerm(k, t.name, t.shape, [500, 1000, 1000][k]!, 2))];
    const step = plainStep(new TfjsEngine(model, store, { terms }), store, sgd);
    const nchw = nhwcToNchw(d.x, d.n, d.h, d.w, d.c);
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const extras = Object.fromEntries(tapsNchw(teacher, d.x, d.n).map((t, k) => [teacherTapInput(k), t]));
      await step({ nhwc: d.x, nchw, labels: d.y, n: d.n, extras }, 0.01);
      counts.push(tf.memory().numTensors);
    }
    // After the first step the count must not move.
    expect(new Set(counts.slice(1)).size).toBe(1);
    model.dispose(); teacher.dispose(); x.dispose(); y.dispose();
  });
});

describe('interruption', () => {
  it('SIGINT during clean: exit 130, no output, no temporary files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nad-int-'));
    const out = join(dir, 'out.onnx');
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'clean', '--method', 'nad', modelPath('wrn16_1'), '--data', join(FIXTURES, 'data', 'fmnist-clean'),
      '--epochs', '5', '--teacher-epochs', '5', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    await new Promise((r) => setTimeout(r, 6000));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(stderr.trim()).toBe('nad-onnx: interrupted');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('checkpoint and resume', () => {
  it('a killed run resumes from its checkpoint and ends in the same bytes as an uninterrupted run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nad-ck-'));
    const args = (out: string, extra: string[] = []) => [join(ROOT, 'dist', 'cli', 'main.js'), 'clean', '--method', 'nad', modelPath('wrn16_1'), '--data', join(FIXTURES, 'data', 'fmnist-clean'),
      '--ratio', '0.3', '--teacher-epochs', '2', '--epochs', '2', '--lr', '0.01', '--out', out, '--quiet', ...extra];
    const run = runCli;
    const reference = join(dir, 'reference.onnx');
    expect(await run(args(reference))).toBe(0);
    // Kill (SIGKILL: no chance to clean up) once the first checkpoint of the NAD phase exists.
    const ckDir = join(dir, 'ck'), out = join(dir, 'resumed.onnx');
    await killAtPhase(args(out, ['--checkpoint', ckDir]), ckDir, 'nad');
    const { readFileSync: read } = await import('node:fs');
    expect(existsSync(out)).toBe(false);
    expect(await run(args(out, ['--checkpoint', ckDir]))).toBe(0);
    expect(read(out).equals(read(reference))).toBe(true);
    // Other arguments: the checkpoint is refused, not silently mixed in.
    expect(await run(args(join(dir, 'other.onnx'), ['--checkpoint', ckDir, '--seed', '5']))).toBe(2);
  });
});

describe('damaged weights are bad input, not a training failure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-damaged-'));
  const DATA = join(FIXTURES, 'data', 'fmnist-clean');
  /** A copy of a fixture with one float initializer's values changed. */
  function damaged(name: string, fixture: string, change: (v: Float32Array) => void): string {
    const m = onnx.ModelProto.decode(readFileSync(modelPath(fixture)));
    const t = m.graph!.initializer!.find((x) => x.name === name)!;
    const v = new Float32Array(Uint8Array.from(t.rawData!).buffer);
    change(v);
    t.rawData = new Uint8Array(v.buffer);
    const path = join(dir, `${fixture}-${name.replace(/\W/g, '_')}.onnx`);
    writeFileSync(path, onnx.ModelProto.encode(m).finish());
    return path;
  }

  it('an initializer holding NaN is refused at load time, naming the tensor (clean and eval: exit 2, nothing written)', async () => {
    const path = damaged('block1.0.conv1.weight', 'wrn16_1_unfused', (v) => (v[7] = NaN));
    const out = join(dir, 'nan.onnx');
    for (const args of [['clean', '--method', 'nad', path, '--data', DATA, '--out', out], ['eval', path, '--data', DATA]]) {
      const r = await cli(args);
      expect(r.code).toBe(2);
      expect(isOneLineError(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toMatch(/initializer 'block1\.0\.conv1\.weight' holds 1 NaN or infinite value \(of 2304\): the model file is damaged/);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('finite weights that compute non-finite logits (a negative running variance): exit 2 before training, naming the images and the first node', async () => {
    const path = damaged('block2.0.bn1.running_var', 'wrn16_1_unfused', (v) => v.fill(-1, 0, 4));
    const out = join(dir, 'negvar.onnx');
    const r = await cli(['clean', '--method', 'nad', path, '--data', DATA, '--out', out]);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toMatch(/computes NaN or infinite logits for 64 of the first 64 --data images before any training \(the first non-finite output is node '[^']+' \(BatchNormalization\)\); its weights are damaged/);
    expect(r.stderr).not.toMatch(/learning rate/);
    expect(existsSync(out)).toBe(false);
    const e = await cli(['eval', path, '--data', DATA]);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/NaN or infinite logits/);
  });

  it('a loss that is not finite from the first step: the message does not blame the learning rate', async () => {
    const { runEpochs } = await import('../src/training/epoch-loop.js');
    const { Rng } = await import('../src/data/random.js');
    const d = fmnist('train', 8);
    const data = { x: d.x, labels: d.y, n: d.n, h: d.h, w: d.w, c: d.c, source: 'test' };
    const base = { phase: 'ft', title: 'fine-tuning', epochs: 2, batch: 4, schedule: { kind: 'step' as const, lr: 0.1, dropEpoch: 2, factor: 0.1 }, augment: { pad: 0, flip: false, cutout: 0 } };
    const nanFirst = runEpochs(data, { ...base, step: async () => ({ total: NaN, terms: {} }) }, new Rng(1));
    await expect(nanFirst).rejects.toThrow(/^fine-tuning diverged at epoch 1 \(loss NaN\) at its first step: the model or the data give non-finite values$/);
    let calls = 0;
    const nanLater = runEpochs(data, { ...base, step: async () => ({ total: ++calls > 2 ? NaN : 1, terms: {} }) }, new Rng(1));
    await expect(nanLater).rejects.toThrow(/^fine-tuning diverged at epoch 2 \(loss NaN\); try a smaller learning rate, e\.g\. --lr 0\.01$/);
  });
});

describe('a default learning rate that diverges', () => {
  // One plain fine-tuning phase on the WRN-16-1 fixture whose step reports a NaN loss whenever the learning
  // rate is above 0.05 (from its third step on, so the loss started finite): the learning rate's fault.
  // fault 'verify': the steps stay finite, but the phase's check of the trained weights (PhaseSpec.verify, NAD's
  // check of its teacher's taps) refuses weights trained at a rate above 0.05.
  async function phase(lr: number, lrRetries: number, checkpointDir?: string, stop?: AbortController, fault: 'loss' | 'verify' = 'loss') {
    const { runPhase } = await import('../src/training/phase.js');
    const { RunCheckpoint } = await import('../src/training/checkpoint.js');
    const d = fmnist('train', 48);
    const model = TrainableModel.fromFile(modelPath('wrn16_1'));
    const store = new ParameterStore(model);
    const optimizer = new Sgd({ momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
    const warnings: string[] = [];
    let highest = 0; // the highest learning rate this attempt stepped at
    const r = await runPhase({
      data: { source: 'test', x: d.x, labels: d.y, n: d.n, h: d.h, w: d.w, c: d.c }, seed: 3, engine: 'onnxruntime', method: 'ft',
      checkpoint: RunCheckpoint.open(checkpointDir, 'lr-retry-test'), log: () => {}, warn: (l) => warnings.push(l), lrRetries,
      // Stopped in the second epoch, after the first was saved (the first attempt never gets there).
      signal: stop?.signal, onProgress: (p) => p.epoch === 1 && stop?.abort(),
    }, {
      name: 'ft', title: 'fine-tuning', model, store, optimizer, gradients: { terms: [crossEntropyTerm(model.numClasses)] },
      step: (engine) => {
        const real = plainStep(engine, store, optimizer);
        let steps = 0; // per attempt: every attempt's first loss is the untrained model's
        highest = 0;
        return async (batch, stepLr) => {
          highest = Math.max(highest, stepLr);
          return fault === 'loss' && stepLr > 0.05 && ++steps > 2 ? { total: NaN, terms: {} } : real(batch, stepLr);
        };
      },
      verify: fault === 'verify' ? async () => (highest > 0.05 ? 'its taps overflow' : undefined) : undefined,
      epochs: 2, batch: 16, schedule: { kind: 'step', lr, dropEpoch: 1, factor: 0.1 }, augment: { pad: 4, flip: true, cutout: 0 }, seedOffset: 1,
    });
    const weights = store.snapshot();
    model.dispose();
    return { r, weights, warnings };
  }

  it('restarts the phase at a tenth of it: the same weights, bit for bit, as a run given that learning rate; a chosen one still fails', async () => {
    const retried = await phase(0.1, 2);
    const direct = await phase(0.01, 0);
    expect(retried.warnings).toEqual([
      'warning: fine-tuning diverged at epoch 1 (loss NaN) at lr 0.1; restarted it from its start with its learning rates divided by 10 (lr 0.01; --lr sets it)',
    ]);
    expect(direct.warnings).toEqual([]);
    expect(retried.r.losses.map((e) => e.lr)).toEqual([0.01, 0.001]);
    expect(retried.r.losses).toEqual(direct.r.losses.map((e) => ({ ...e, seconds: expect.any(Number) })));
    for (const [k, v] of direct.weights) expect(retried.weights.get(k), k).toEqual(v);
    await expect(phase(0.1, 0)).rejects.toThrow(/^fine-tuning diverged at epoch 1 \(loss NaN\); try a smaller learning rate, e\.g\. --lr 0\.01$/);
    // Twice at most: 10 -> 1 -> 0.1 all diverge, and the last message advises 0.01.
    await expect(phase(10, 2)).rejects.toThrow(/diverged at epoch 1 \(loss NaN\); try a smaller learning rate, e\.g\. --lr 0\.01$/);
  });

  it('a phase whose trained weights fail its check restarts the same way; with a chosen learning rate the check fails the run', async () => {
    const retried = await phase(0.1, 2, undefined, undefined, 'verify');
    const direct = await phase(0.01, 0, undefined, undefined, 'verify');
    expect(retried.warnings).toEqual([
      'warning: fine-tuning diverged at epoch 2 (its taps overflow) at lr 0.1; restarted it from its start with its learning rates divided by 10 (lr 0.01; --lr sets it)',
    ]);
    expect(retried.r.losses.map((e) => e.lr)).toEqual([0.01, 0.001]);
    for (const [k, v] of direct.weights) expect(retried.weights.get(k), k).toEqual(v);
    await expect(phase(0.1, 0, undefined, undefined, 'verify')).rejects.toThrow(/^fine-tuning diverged at epoch 2 \(its taps overflow\); try a smaller learning rate, e\.g\. --lr 0\.01$/);
  });

  it('a run stopped after a restart resumes at the lowered learning rate and ends in the same weights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nad-lr-retry-'));
    await expect(phase(0.1, 2, dir, new AbortController())).rejects.toThrow(/abort/i);
    expect(existsSync(join(dir, 'nad-onnx-checkpoint.bin'))).toBe(true);
    const resumed = await phase(0.1, 2, dir);
    const direct = await phase(0.01, 0);
    expect(resumed.warnings).toEqual([]);
    expect(resumed.r.losses.map((e) => e.lr)).toEqual([0.01, 0.001]);
    for (const [k, v] of direct.weights) expect(resumed.weights.get(k), k).toEqual(v);
  });
});

describe('determinism across machines', () => {
  it('a checkpoint written on another machine still finishes, and says it cannot promise the same bytes', async () => {
    const { loadCheckpoint, saveCheckpoint } = await import('../src/training/checkpoint.js');
    const dir = mkdtempSync(join(tmpdir(), 'nad-ck-machine-'));
    const ck = join(dir, 'ck');
    const args = (out: string) => ['clean', '--method', 'nad', modelPath('wrn16_1'), '--data', join(FIXTURES, 'data', 'fmnist-clean'), '--ratio', '0.1', '--teacher-epochs', '1', '--epochs', '1',
      '--checkpoint', ck, '--out', out, '--json', '--max-acc-drop', '100'];
    const first = await cli(args(join(dir, 'a.onnx')));
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).warnings).toEqual([]);
    // Rewrite the checkpoint as if another CPU had written it.
    const file = join(ck, 'nad-onnx-checkpoint.bin');
    const raw = readFileSync(file);
    const header = JSON.parse(raw.subarray(8, 8 + raw.readUInt32LE(0)).toString('utf8'));
    const state = loadCheckpoint(ck, header.fingerprint)!;
    saveCheckpoint(ck, { ...state, machine: 'Some Other CPU (AVX2), onnxruntime 1.30.0' });
    const again = await cli(args(join(dir, 'b.onnx')));
    expect(again.code, again.stderr).toBe(0);
    const rep = JSON.parse(again.stdout);
    expect(rep.warnings).toHaveLength(1);
    expect(rep.warnings[0]).toMatch(/^warning: resumed a checkpoint written on Some Other CPU \(AVX2\), onnxruntime 1\.30\.0, here .+: the run finished, but its bytes can differ from an uninterrupted run/);
    expect(again.stderr).toContain(rep.warnings[0]);
    expect(existsSync(join(dir, 'b.onnx'))).toBe(true);
  });
});

describe("NAD's check of the teacher's taps", () => {
  it('refuses NaN, infinities and values at or beyond the limit, and passes everything else', async () => {
    const { allFiniteWithin } = await import('../src/training/finite-values.js');
    const ok = Float32Array.from([0, -0, 1, -1, 9.9e17, -9.9e17, 3.4e38]);
    expect(allFiniteWithin(ok)).toBe(true);
    expect(allFiniteWithin(ok.subarray(0, 6), 1e18)).toBe(true);
    expect(allFiniteWithin(ok, 1e18)).toBe(false); // 3.4e38 is finite but squares to infinity
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.01e18, -2e18]) {
      const v = Float32Array.from([1, 2, bad, 3]);
      expect(allFiniteWithin(v, 1e18), String(bad)).toBe(false);
    }
    expect(allFiniteWithin(Float32Array.from([1, Number.NaN]))).toBe(false);
    expect(allFiniteWithin(Float32Array.from([Number.NEGATIVE_INFINITY]))).toBe(false);
  });

  it('a trained teacher whose taps overflow is refused as its phase ends (so that the phase can restart), a sound one passes', async () => {
    const { teacherTapsOverflow } = await import('../src/defences/nad.js');
    const d = fmnist('train', 40);
    const model = TrainableModel.fromFile(modelPath('wrn16_1'));
    try {
      const store = new ParameterStore(model);
      const taps = model.taps.map((t) => t.name);
      const ctx = { source: model.source, data: { source: 'test', x: d.x, labels: d.y, n: d.n, h: d.h, w: d.w, c: d.c } } as Parameters<typeof teacherTapsOverflow>[0];
      expect(await teacherTapsOverflow(ctx, model, store, taps)).toBeUndefined();
      // Finite weights, 1e19 times too large: the first tap's values pass 1e18.
      const first = store.get(store.trainableNames()[0]!).value;
      for (let i = 0; i < first.length; i++) first[i]! *= 1e19;
      expect(first.every(Number.isFinite)).toBe(true);
      expect(await teacherTapsOverflow(ctx, model, store, taps)).toBe('its taps are no longer finite, or overflow when squared, after the last update');
    } finally {
      model.dispose();
    }
  });
});
