/**
 * `clean` end to end on the committed Fashion-MNIST fixture: the README quick start (short), the report
 * schema, verification gates, determinism and bad input.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { onnx } from '../src/onnx/onnx-schema.js';
import { parameterToOnnx } from '../src/import/parameters.js';
import { calibrationMoments, findFoldedConvs } from '../src/import/restore-batchnorm.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { cli, isOneLineError } from './helpers/cli.js';
import { FIXTURES, fmnist, maxAbs, maxAbsDiff, modelPath, wasm } from './helpers/fixtures.js';
import { schemaErrors } from './helpers/schemas.js';

const dir = mkdtempSync(join(tmpdir(), 'nad-clean-'));
const DATA = join(FIXTURES, 'data', 'fmnist-clean');
const TEST = join(FIXTURES, 'data', 'fmnist-test.npz');
/** The README quick start, as committed there: the NAD defaults, shortened to 2 + 2 epochs. */
const QUICK_MODEL = 'wrn16_1_nad';
const QUICK = ['--method', 'nad', '--lr-drop-epoch', '1', '--teacher-epochs', '2', '--epochs', '2'];

beforeAll(wasm);

describe('clean (quick start)', () => {
  it('lowers ASR by at least half, keeps acc_all within 5 points, writes a verified model', async () => {
    const out = join(dir, 'quick.clean.onnx');
    const report = join(dir, 'quick.json');
    const r = await cli(['clean', modelPath(QUICK_MODEL), '--data', DATA, '--test', TEST, '--trigger', 'grid', '--target', '0', ...QUICK, '--out', out, '--report', report, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(schemaErrors('clean-report.schema.json', rep)).toBe('');
    expect(JSON.parse(readFileSync(report, 'utf8'))).toEqual(rep);
    console.log(`quick start: before ${rep.before.acc_all.toFixed(2)} / ${rep.before.asr.toFixed(2)}, teacher ${rep.teacher.acc_all.toFixed(2)} / ${rep.teacher.asr.toFixed(2)}, NAD ${rep.after.acc_all.toFixed(2)} / ${rep.after.asr.toFixed(2)} (acc_all / asr)`);
    expect(rep.after.asr).toBeLessThanOrEqual(rep.before.asr / 2);
    expect(rep.before.acc_all - rep.after.acc_all).toBeLessThanOrEqual(5);
    expect(rep.losses.teacher).toHaveLength(2);
    expect(rep.losses.nad).toHaveLength(2);
    expect(rep.losses.nad[0].at).toHaveLength(3);
    expect(rep.device.threads).toBe(2);
    // The written file, measured again by `eval` (onnxruntime, here on one thread), gives the reported figures.
    const e = await cli(['eval', out, '--data', TEST, '--trigger', 'grid', '--target', '0', '--threads', '1', '--json']);
    expect(JSON.parse(e.stdout)).toEqual(rep.after);
    // Provenance and an unchanged graph.
    const m = onnx.ModelProto.decode(readFileSync(out));
    const meta = Object.fromEntries(m.metadataProps!.map((p) => [p.key, p.value]));
    expect(meta['nad-onnx.method']).toBe('neural-attention-distillation');
    expect(meta['nad-onnx.source_sha256']).toBe(rep.model.sha256);
    const src = onnx.ModelProto.decode(readFileSync(modelPath(QUICK_MODEL)));
    expect(m.graph!.node!.map((n) => n.opType)).toEqual(src.graph!.node!.map((n) => n.opType));
  });

  it('is the command the README shows', () => {
    const readme = readFileSync(join(FIXTURES, '..', 'README.md'), 'utf8').replace(/\\\n\s+/g, '');
    expect(readme).toContain(`nad-onnx clean fixtures/models/${QUICK_MODEL}.onnx --data fixtures/data/fmnist-clean --test fixtures/data/fmnist-test.npz --trigger grid --target 0 ${QUICK.join(' ')} `);
  });
});

describe('restoring folded BatchNorms', () => {
  it('changes nothing before training: same logits, same exported weights', async () => {
    const model = TrainableModel.fromFile(modelPath('wrn16_1'));
    const d = fmnist('test', 32);
    const x = tf.tensor4d(d.x, [d.n, d.h, d.w, d.c]);
    const before = tf.tidy(() => Array.from(model.forward(x, { training: false }).logits.dataSync()));
    const w0 = model.exportWeights();
    const count = model.parameterCount();
    expect(model.restoreFoldedBatchNorm(x).length).toBe(6); // bn2 of each of the six blocks
    expect(model.parameterCount()).toBe(count); // the file's parameters, whatever is frozen while restored
    const after = tf.tidy(() => Array.from(model.forward(x, { training: false }).logits.dataSync()));
    expect(maxAbsDiff(before, after)).toBeLessThan(1e-4 * maxAbs(before));
    const w1 = model.exportWeights();
    for (const [k, v] of w0) expect(maxAbsDiff(w1.get(k)!, v), k).toBeLessThan(1e-4 * Math.max(1e-3, maxAbs(v)));
    x.dispose();
    model.dispose();
  });
});

describe('calibration statistics', () => {
  it('accumulated chunk by chunk equal a float64 two-pass computation over all images at once', () => {
    const model = TrainableModel.fromFile(modelPath('wrn16_1'));
    const d = fmnist('train', 100); // 32 + 32 + 32 + 4
    const x = tf.tensor4d(d.x, [d.n, d.h, d.w, d.c]);
    const outputs = findFoldedConvs(model.graph).map((f) => f.output);
    const chunked = calibrationMoments(model.runner, outputs, x);
    const whole = tf.tidy(() => {
      const r = model.runner.run(x, { training: false, capture: outputs });
      return outputs.map((o) => {
        const t = r.captured.get(o)!.t, v = t.dataSync(), ch = t.shape[3]!, count = v.length / ch;
        const mean = new Array<number>(ch).fill(0), variance = new Array<number>(ch).fill(0);
        for (let i = 0; i < v.length; i++) mean[i % ch]! += v[i]! / count;
        for (let i = 0; i < v.length; i++) variance[i % ch]! += (v[i]! - mean[i % ch]!) ** 2 / count;
        return { mean, variance };
      });
    });
    expect(outputs.length).toBe(6);
    chunked.forEach((c, i) => {
      expect(maxAbsDiff(Array.from(c.mean.dataSync()), whole[i]!.mean)).toBeLessThan(1e-4 * Math.max(1, maxAbs(whole[i]!.mean)));
      expect(maxAbsDiff(Array.from(c.variance.dataSync()), whole[i]!.variance)).toBeLessThan(1e-4 * Math.max(1, maxAbs(whole[i]!.variance)));
      c.mean.dispose();
      c.variance.dispose();
    });
    x.dispose();
    model.dispose();
  });
});

describe('restored convolutions train at about PyTorch\'s pace', () => {
  // Behind a BatchNorm, SGD's relative step on a conv weight goes as lr/|W|^2, so the restored W' should
  // have PyTorch's channel norms. The unfused export of the same network holds PyTorch's real conv weights.
  it('puts each restored layer\'s effective learning rate within 2x of PyTorch\'s (median over channels)', () => {
    const folded = TrainableModel.fromFile(modelPath('wrn16_1'));
    const unfused = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
    const d = fmnist('train', 64);
    const x = tf.tensor4d(d.x, [d.n, d.h, d.w, d.c]);
    const restored = folded.restoreFoldedBatchNorm(x);
    const convs = (m: TrainableModel) => m.graph.nodes.filter((n) => n.opType === 'Conv');
    const norms = (m: TrainableModel, name: string) => {
      const p = m.params.get(name)!;
      const v = parameterToOnnx(p), co = p.onnxDims[0]!, per = v.length / co;
      return Array.from({ length: co }, (_, c) => Math.hypot(...v.subarray(c * per, (c + 1) * per)));
    };
    const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
    expect(restored.length).toBe(6);
    for (const f of restored) {
      const i = convs(folded).findIndex((n) => n.name === f.node);
      const truth = norms(unfused, convs(unfused)[i]!.inputs[1]!), ours = norms(folded, f.weight);
      const factor = median(truth.map((t, c) => (t / ours[c]!) ** 2)); // our effective lr / PyTorch's
      expect(factor, f.node).toBeGreaterThan(0.5);
      expect(factor, f.node).toBeLessThan(2);
    }
    x.dispose();
    folded.dispose();
    unfused.dispose();
  });
});

describe('gates, determinism, bad input', () => {
  const SHORT = ['--data', DATA, '--ratio', '0.2', '--test', TEST, '--trigger', 'grid', '--target', '0', '--teacher-epochs', '1', '--epochs', '1', '--lr', '0.01'];

  it('--max-asr missed: exit 1, the report says which, nothing written', async () => {
    const out = join(dir, 'gate.onnx');
    const r = await cli(['clean', '--method', 'nad', modelPath('wrn16_1'), ...SHORT, '--max-asr', '0', '--out', out, '--json']);
    expect(r.code).toBe(1);
    expect(existsSync(out)).toBe(false);
    const rep = JSON.parse(r.stdout);
    expect(rep.gates.passed).toBe(false);
    expect(rep.gates.failed[0]).toMatch(/asr .* is above --max-asr 0/);
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('the same inputs and seed give byte-identical output', async () => {
    const a = join(dir, 'det-a.onnx'), b = join(dir, 'det-b.onnx');
    expect((await cli(['clean', '--method', 'nad', modelPath('wrn16_1'), ...SHORT, '--out', a, '--quiet'])).code).toBe(0);
    expect((await cli(['clean', '--method', 'nad', modelPath('wrn16_1'), ...SHORT, '--out', b, '--quiet'])).code).toBe(0);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });

  const bad: [string, string[], number, RegExp][] = [
    ['unknown trigger spec', ['--trigger', 'stripes', '--target', '0'], 2, /--trigger stripes: unknown trigger/],
    ['target out of range', ['--trigger', 'grid', '--target', '12'], 2, /--target: 12 is not a class/],
    ['empty data folder', ['--data', join(dir)], 2, /no class folders/],
    ['diverging loss', ['--lr', '1e12'], 3, /diverged at epoch 1 .*try a smaller learning rate/],
  ];
  for (const [name, extra, code, pattern] of bad) {
    it(`${name}: exit ${code}, one line, no output`, async () => {
      const out = join(dir, `bad-${name.replace(/\W/g, '')}.onnx`);
      const args = ['clean', '--method', 'nad', modelPath('wrn16_1'), '--data', DATA, '--ratio', '0.1', '--test', TEST, '--teacher-epochs', '1', '--epochs', '1', '--out', out];
      // Later flags win in commander: the case's flags override the defaults above.
      const r = await cli([...args, ...extra]);
      expect(r.code, r.stderr).toBe(code);
      expect(isOneLineError(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toMatch(pattern);
      expect(existsSync(out)).toBe(false);
    });
  }
});

describe('clean with a ready teacher', () => {
  it('--teacher takes an ONNX teacher; no teacher fine-tuning runs', async () => {
    const out = join(dir, 'teacher.onnx');
    const r = await cli(['clean', '--method', 'nad', modelPath('wrn16_1'), '--data', DATA, '--ratio', '0.2', '--test', TEST, '--trigger', 'grid', '--target', '0',
      '--teacher', join(FIXTURES, 'reference', 'teacher_wrn16_1.onnx'), '--epochs', '1', '--lr', '0.01', '--out', out, '--json',
      '--html', join(dir, 'teacher.html')]);
    expect(r.code, r.stderr).toBe(0);
    // The HTML report: self-contained, the three-row table, loss curves, attention maps for 4 clean + 4
    // triggered images x 3 models x 3 taps (+ the 8 input images).
    const html = readFileSync(join(dir, 'teacher.html'), 'utf8');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html.match(/<tr><th>(before|fine-tuning \(teacher\)|NAD \(output\))<\/th>/g)).toHaveLength(3);
    expect(html).toContain('<polyline');
    expect(html.match(/src="data:image\/png;base64,/g)).toHaveLength(8 + 8 * 3 * 3);
    const rep = JSON.parse(r.stdout);
    expect(rep.losses.teacher).toEqual([]);
    expect(rep.parameters.teacher).toMatch(/teacher_wrn16_1\.onnx$/);
    expect(rep.losses.nad[0].at.every((v: number) => v > 0)).toBe(true);
  });

  it('--teacher with taps of other spatial sizes is refused', async () => {
    const r = await cli(['clean', '--method', 'nad', modelPath('wrn16_1'), '--data', DATA, '--ratio', '0.1', '--teacher', modelPath('tvresnet_w16'), '--out', join(dir, 'x.onnx')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/do not match the student's spatial sizes/);
  });
});
