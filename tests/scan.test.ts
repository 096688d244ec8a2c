/**
 * `scan` (Neural Cleanse): the anomaly index against a hand computation, the command on the quick-start
 * model (its backdoor's target is flagged, JSON by its schema, an HTML page), and bad input.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { anomalyIndices, flaggedClasses, MAD_CONSISTENCY } from '../src/scan/anomaly-index.js';
import { NEURAL_CLEANSE_DEFAULTS, reverseTrigger, triggerSearchSpec } from '../src/scan/neural-cleanse.js';
import { loadModel, modelFromBytes } from '../src/import/load-model.js';
import { modelBytes } from '../src/export/write-model.js';
import { tailModelBytes } from '../src/export/tail-model.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { createEngine } from '../src/training/create-engine.js';
import { FrozenModel } from '../src/training/frozen-model.js';
import { ParameterStore } from '../src/training/parameter-store.js';
import { nhwcToNchw } from '../src/verify/onnx-runtime.js';
import { judge } from '../src/verify/gates.js';
import { cli, isOneLineError } from './helpers/cli.js';
import { fmnist, FIXTURES, maxAbs, maxAbsDiff, modelPath, readJson, REFERENCE, relL2, wasm } from './helpers/fixtures.js';
import { buildModel, randoms } from './helpers/onnx-builder.js';
import { schemaErrors } from './helpers/schemas.js';

describe('anomaly index', () => {
  it('matches a hand computation: median 51, MAD 1.4826 x 3.5, small side only', () => {
    const r = anomalyIndices([10, 50, 52, 48, 55, 60]);
    expect(r.median).toBe(51);
    // |x - 51| = 41, 1, 1, 3, 4, 9 -> median (3 + 4) / 2 = 3.5
    expect(r.mad).toBeCloseTo(MAD_CONSISTENCY * 3.5, 12);
    const mad = 1.4826 * 3.5;
    expect(r.indices[0]).toBeCloseTo(41 / mad, 10);
    expect(r.indices[1]).toBeCloseTo(1 / mad, 10);
    expect(r.indices[3]).toBeCloseTo(3 / mad, 10);
    expect([r.indices[2], r.indices[4], r.indices[5]]).toEqual([0, 0, 0]); // above the median
    expect(flaggedClasses(r.indices, 2)).toEqual([0]);
  });
  it('equal norms flag nothing; fewer than 3 classes are refused', () => {
    expect(anomalyIndices([5, 5, 5, 5]).indices).toEqual([0, 0, 0, 0]);
    expect(() => anomalyIndices([1, 2])).toThrow(/at least 3 classes/);
  });
});

beforeAll(wasm);

describe('Neural Cleanse optimisation against a PyTorch recording (fixtures/make_scan_reference.py)', () => {
  it('16 Adam steps on the quick-start model: the same mask, pattern and per-epoch bookkeeping', async () => {
    const rec = readJson<{ history: { success: number; l1: number; cost: number }[]; mask: number[]; pattern: number[]; mask_l1: number; trigger_success: number }>(join(REFERENCE, 'nc_steps.json'));
    const source = loadModel(modelPath('wrn16_1_nad'));
    const model = new TrainableModel(source);
    const d = fmnist('train', 128);
    const engine = await createEngine(model, new ParameterStore(model), triggerSearchSpec(10), { choice: 'onnxruntime' });
    const logits = await FrozenModel.create(source.bytes, 'wrn16_1_nad', [model.graph.outputs[0]!.name]);
    const history: { success: number; l1: number; cost: number }[] = [];
    const r = await reverseTrigger(engine, logits, { nchw: nhwcToNchw(d.x, 128, d.h, d.w, d.c), labels: d.y, n: 128, c: d.c, h: d.h, w: d.w }, 0, 10,
      { ...NEURAL_CLEANSE_DEFAULTS, epochs: 4 }, (_e, success, l1, cost) => history.push({ success, l1, cost }));
    await engine.dispose();
    await logits.release();
    model.dispose();
    expect(history.map((h) => h.success)).toEqual(rec.history.map((h) => h.success));
    history.forEach((h, i) => {
      expect(h.cost).toBeCloseTo(rec.history[i]!.cost, 12);
      expect(Math.abs(h.l1 - rec.history[i]!.l1)).toBeLessThan(1e-3 * rec.history[i]!.l1);
    });
    // The mask moved from its start (0.88 everywhere): compare the change, not just the values.
    const start = Math.tanh(1) / (2 + 1e-7) + 0.5;
    expect(relL2(r.mask.map((v) => v - start), rec.mask.map((v) => v - start))).toBeLessThan(1e-2);
    expect(relL2(r.pattern.map((v) => v - start), rec.pattern.map((v) => v - start))).toBeLessThan(1e-2);
    expect(Math.abs(r.maskL1 - rec.mask_l1)).toBeLessThan(1e-3 * rec.mask_l1);
    expect(r.triggerSuccess).toBeCloseTo(rec.trigger_success, 6);
  });
});

describe('tail model (the network after a tap)', () => {
  it('on the tap\'s features gives the full model\'s logits; a tensor that does not separate input from output is refused', async () => {
    const source = loadModel(modelPath('wrn16_1_nad'));
    const model = new TrainableModel(source);
    const tap = model.taps[model.taps.length - 1]!;
    model.dispose();
    const d = fmnist('test', 16);
    const x = nhwcToNchw(d.x, 16, d.h, d.w, d.c);
    const full = await FrozenModel.create(modelBytes(source, undefined, undefined, [tap.name]), 'full', [tap.name, 'logits']);
    const [features, logits] = await full.run(x, [16, d.c, d.h, d.w]);
    await full.release();
    // The tail's bytes come back as a Node Buffer, which is how the loader once misread raw tensor data.
    const bytes = tailModelBytes(source, tap.name, [1, ...tap.shape]);
    const tail = await FrozenModel.create(bytes, 'tail', ['logits']);
    const [tailLogits] = await tail.run(features!, [16, ...tap.shape]);
    await tail.release();
    expect(maxAbsDiff(tailLogits!, logits!)).toBeLessThan(1e-5 * maxAbs(logits!));
    const reloaded = new TrainableModel(modelFromBytes(bytes, 'tail'));
    expect(reloaded.inputShape).toEqual(tap.shape);
    reloaded.dispose();
    expect(() => tailModelBytes(source, model.taps[0]!.name.replace('block1', 'nothing'), [1, 1, 1, 1])).toThrow(/does not separate/);
  });
});

describe('--max-anomaly gate', () => {
  const m = { acc: 90, acc_all: 90, target_recall: null, asr: null, ra: null, n: 100 };
  it('fails when the cleaned model\'s largest anomaly index is above the limit, passes at or below it', () => {
    expect(judge({ before: m, after: m, baseline: null, label: 'NAD', maxAnomaly: 2, anomalyAfter: 2.5 }).failed[0]).toMatch(/anomaly index 2.50 is above --max-anomaly 2/);
    expect(judge({ before: m, after: m, baseline: null, label: 'NAD', maxAnomaly: 2, anomalyAfter: 2 }).failed).toEqual([]);
  });
});

describe('nad-onnx scan', () => {
  it('clean --scan on the quick start: the scan before flags the backdoor\'s target 0; after NAD its trigger needs a larger mask; report and HTML', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nad-scan-'));
    const html = join(dir, 'report.html'), report = join(dir, 'report.json');
    // The README quick start, plus a scan with a budget CI affords (320 images, 16 epochs; bench/scan.sh runs the defaults):
    // the suite's longest test (155 s alone here), so the CLI's kill comes just before the test's own 900 s limit.
    const r = await cli(['clean', '--method', 'nad', modelPath('wrn16_1_nad'), '--data', join(FIXTURES, 'data', 'fmnist-clean'), '--test', join(FIXTURES, 'data', 'fmnist-test.npz'),
      '--trigger', 'grid', '--target', '0', '--lr-drop-epoch', '1', '--teacher-epochs', '2', '--epochs', '2', '--out', join(dir, 'clean.onnx'),
      '--scan', '--scan-images', '320', '--scan-epochs', '16', '--report', report, '--html', html, '--json'], { timeout: 880_000 });
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(schemaErrors('clean-report.schema.json', rep)).toBe('');
    const before = rep.scan.before, after = rep.scan.after;
    console.log(`scan before: flagged ${before.flagged}, index ${before.classes[0].anomaly_index.toFixed(2)}, L1 ${before.classes.map((k: { mask_l1: number }) => k.mask_l1.toFixed(0)).join(' ')}`);
    console.log(`scan after:  flagged ${after.flagged}, index ${after.classes[0].anomaly_index.toFixed(2)}, L1 ${after.classes.map((k: { mask_l1: number }) => k.mask_l1.toFixed(0)).join(' ')}`);
    expect(before.classes).toHaveLength(10);
    expect(before.classes[0].name).toBe('0-tshirt');
    expect(before.flagged[0]).toBe(0);
    expect(before.classes[0].anomaly_index).toBeGreaterThan(2);
    expect(before.classes[0].trigger_success).toBeGreaterThan(0.9);
    for (const k of before.classes.slice(1)) expect(k.mask_l1).toBeGreaterThan(3 * before.classes[0].mask_l1);
    expect(after.classes[0].mask_l1).toBeGreaterThan(3 * before.classes[0].mask_l1);
    expect(readFileSync(html, 'utf8')).toContain('scan after cleaning');
  }, 900_000);

  it('scan --json prints one object by its schema, with the class names of the data folder', async () => {
    const r = await cli(['scan', modelPath('wrn16_1_nad'), '--data', join(FIXTURES, 'data', 'fmnist-clean'), '--max-images', '64', '--epochs', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(schemaErrors('scan.schema.json', j)).toBe('');
    expect(j.classes.map((k: { label: number }) => k.label)).toEqual([...Array(10).keys()]);
    expect(j.classes[3].name).toBe('3-dress');
    expect(j.images).toBe(64);
    expect(j.settings.epochs).toBe(2);
  }, 300_000);

  it('bad input: fewer than 3 classes, an empty class, --max-anomaly without --scan: exit 2, one line, nothing written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nad-scan-bad-'));
    const two = join(dir, 'two.onnx');
    writeFileSync(two, buildModel({
      inputs: [{ name: 'x', dims: [1, 1, 32, 32] }], outputs: ['logits'],
      nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3] } }, { op: 'GlobalAveragePool', inputs: ['c'], outputs: ['g'] },
        { op: 'Flatten', inputs: ['g'], outputs: ['logits'] }],
      inits: [{ name: 'w', dims: [2, 1, 3, 3], float: Array.from(randoms(18, 1)) }],
    }));
    const html = join(dir, 'x.html');
    let r = await cli(['scan', two, '--data', join(FIXTURES, 'data', 'fmnist-clean'), '--html', html]);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(/2 classes; the anomaly index needs at least 3/);
    // A data folder without one class: the folders are the classes, so the last label has no images.
    const partial = join(dir, 'partial');
    for (const c of readdirSync(join(FIXTURES, 'data', 'fmnist-clean'))) if (c !== '3-dress') cpSync(join(FIXTURES, 'data', 'fmnist-clean', c), join(partial, c), { recursive: true });
    r = await cli(['scan', modelPath('wrn16_1_nad'), '--data', partial, '--html', html]);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(/class 9 .*has no images/);
    // An --html over the model is refused before the scan runs (the model stays as it was).
    const before = readFileSync(modelPath('wrn16_1_nad'));
    r = await cli(['scan', modelPath('wrn16_1_nad'), '--data', join(FIXTURES, 'data', 'fmnist-clean'), '--html', modelPath('wrn16_1_nad'), '--epochs', '50']);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr.trim()).toMatch(/^nad-onnx: --html .*wrn16_1_nad\.onnx: refusing to overwrite the input model$/);
    expect(readFileSync(modelPath('wrn16_1_nad')).equals(before)).toBe(true);
    r = await cli(['clean', '--method', 'nad', modelPath('wrn16_1_nad'), '--data', join(FIXTURES, 'data', 'fmnist-clean'), '--out', join(dir, 'o.onnx'), '--max-anomaly', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--max-anomaly needs --scan/);
    expect(existsSync(html) || existsSync(join(dir, 'o.onnx'))).toBe(false);
  }, 300_000);
});
