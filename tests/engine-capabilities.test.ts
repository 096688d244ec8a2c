/**
 * What the training engine offers beyond a plain step, against PyTorch recordings
 * (fixtures/make_engine_references.py) and finite differences: gradients with respect to the input
 * (BatchNorm in train and in eval mode), eval-mode parameter gradients, Adam, the cosine schedule, and
 * the engine choice when the tfjs engine cannot run a spec.
 */
import { nchwToNhwc } from '../src/verify/onnx-runtime.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import * as tf from '../src/tf.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../src/errors.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { createEngine } from '../src/training/create-engine.js';
import { INPUT_GRADIENT, type GradientSpec } from '../src/training/engine.js';
import { crossEntropyTerm } from '../src/training/loss/cross-entropy.js';
import { REFERENCE_LOGITS, referenceDistillationTerm } from '../src/training/loss/reference-distillation.js';
import { Adam } from '../src/training/optimizers/adam.js';
import { ParameterStore } from '../src/training/parameter-store.js';
import { lrAt } from '../src/training/schedule.js';
import { buildModel, randoms, type InitSpec, type NodeSpec } from './helpers/onnx-builder.js';
import { maxAbsDiff, modelPath, readJson, REFERENCE, relL2, wasm } from './helpers/fixtures.js';

interface EngineRef {
  x_nchw: number[]; labels: number[]; shape: [number, number, number, number];
  train: { loss: number; input_grad: number[]; param_grads: Record<string, number[]> };
  eval: { loss: number; input_grad: number[]; param_grads: Record<string, number[]> };
  adam: { lr: number; weight_decay: number; initial: number[]; grads: number[][]; values: number[][] };
  cosine: { lr: number; epochs: number; lrs: number[] };
}

const REF = readJson<EngineRef>(join(REFERENCE, 'engine.json'));

beforeAll(wasm);

async function gradientsOf(model: TrainableModel, spec: GradientSpec, nchw: Float32Array, labels: Int32Array) {
  const [n, c, h, w] = [labels.length, ...model.inputShape];
  const store = new ParameterStore(model);
  const e = await createEngine(model, store, spec, { choice: 'onnxruntime' });
  try {
    return await e.gradients({ nhwc: nchwToNhwc(nchw, n, c, h, w), nchw, labels, n }, store.values());
  } finally {
    await e.dispose();
  }
}

describe('gradients with respect to the input', () => {
  for (const mode of ['train', 'eval'] as const) {
    it(`match PyTorch with BatchNorm in ${mode} mode (WRN-16-1, 4 images)`, async () => {
      const model = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
      const r = await gradientsOf(model, { terms: [crossEntropyTerm(10)], input: true, batchNorm: mode }, Float32Array.from(REF.x_nchw), Int32Array.from(REF.labels));
      model.dispose();
      const ref = REF[mode];
      expect(Math.abs(r.total - ref.loss)).toBeLessThan(1e-4 * ref.loss);
      const rel = relL2(r.grads.get(INPUT_GRADIENT)!, ref.input_grad);
      console.log(`input gradient, BatchNorm ${mode}: relative L2 difference to PyTorch ${rel.toExponential(2)}`);
      expect(rel).toBeLessThan(2e-3);
      if (mode === 'eval') {
        for (const [k, g] of Object.entries(ref.param_grads)) expect(relL2(r.grads.get(k)!, g), k).toBeLessThan(2e-3);
        expect(r.stats).toEqual([]); // eval mode leaves the running statistics alone
      } else {
        expect(r.stats.length).toBeGreaterThan(0);
      }
    });
  }

  it('only the input: no parameter gradients are computed', async () => {
    const model = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
    const r = await gradientsOf(model, { terms: [crossEntropyTerm(10)], input: true, params: false, batchNorm: 'eval' }, Float32Array.from(REF.x_nchw), Int32Array.from(REF.labels));
    model.dispose();
    expect([...r.grads.keys()]).toEqual([INPUT_GRADIENT]);
    expect(relL2(r.grads.get(INPUT_GRADIENT)!, REF.eval.input_grad)).toBeLessThan(2e-3);
  });

  it('constant parameters (the scan\'s engine): the same input gradient, loss and logits as parameter inputs; a parameter value is refused', async () => {
    const model = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
    const nchw = Float32Array.from(REF.x_nchw), labels = Int32Array.from(REF.labels);
    const [n, c, h, w] = [labels.length, ...model.inputShape];
    const batch = { nhwc: nchwToNhwc(nchw, n, c, h, w), nchw, labels, n };
    const spec: GradientSpec = { terms: [crossEntropyTerm(10)], input: true, params: false, batchNorm: 'eval', logits: true };
    const store = new ParameterStore(model);
    const asInputs = await createEngine(model, store, spec, { choice: 'onnxruntime' });
    const baked = await createEngine(model, store, { ...spec, constantParams: true }, { choice: 'onnxruntime' });
    try {
      const a = await asInputs.gradients(batch, new Map()), b = await baked.gradients(batch, new Map());
      expect(Math.abs(b.total - a.total)).toBeLessThan(1e-5 * a.total);
      expect(relL2(b.logits!, a.logits!)).toBeLessThan(1e-5);
      expect(relL2(b.grads.get(INPUT_GRADIENT)!, a.grads.get(INPUT_GRADIENT)!)).toBeLessThan(1e-4);
      expect(relL2(b.grads.get(INPUT_GRADIENT)!, REF.eval.input_grad)).toBeLessThan(2e-3);
      const name = [...store.entries.keys()][0]!;
      await expect(baked.gradients(batch, new Map([[name, store.get(name).value]]))).rejects.toThrow(/constant parameters/);
    } finally {
      await asInputs.dispose();
      await baked.dispose();
      model.dispose();
    }
  });

});

/** Conv, BatchNorm (scale s, shift bb), an activation (ReLU), pooling, Gemm on [3, 2, 6, 6] inputs. */
function smallModel(scale = [1.2, 0.8, 1, 0.5], shift = [0.1, 0.2, -0.1, 0.3], activation: NodeSpec[] = [{ op: 'Relu', inputs: ['bn'], outputs: ['r'] }], opset?: number, inits: InitSpec[] = []): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', dims: [3, 2, 6, 6] }], outputs: ['logits'],
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['a'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: 'BatchNormalization', inputs: ['a', 's', 'bb', 'm', 'v'], outputs: ['bn'], attrs: { epsilon: { float: 1e-5 } } },
      ...activation, { op: 'GlobalAveragePool', inputs: ['r'], outputs: ['g'] },
      { op: 'Flatten', inputs: ['g'], outputs: ['f'] }, { op: 'Gemm', inputs: ['f', 'w2', 'b2'], outputs: ['logits'], attrs: { transB: 1 } },
    ],
    inits: [
      { name: 'w1', dims: [4, 2, 3, 3], float: Array.from(randoms(72, 21)) }, { name: 'b1', dims: [4], float: [0.1, -0.2, 0.05, 0] },
      { name: 's', dims: [4], float: scale }, { name: 'bb', dims: [4], float: shift },
      { name: 'm', dims: [4], float: [0.05, -0.1, 0.2, 0] }, { name: 'v', dims: [4], float: [0.9, 1.3, 0.7, 1.1] },
      { name: 'w2', dims: [3, 4], float: Array.from(randoms(12, 22)) }, { name: 'b2', dims: [3], float: [0, 0.1, -0.1] }, ...inits,
    ],
    opset,
  });
}

/** The mean cross-entropy of a model's logits on [3, 2, 6, 6] inputs, computed by onnxruntime inference (float64 in JS). */
async function smallLoss(bytes: Uint8Array, labels: Int32Array): Promise<(x: Float32Array) => Promise<number>> {
  const session = await ort.InferenceSession.create(bytes);
  return async (xs: Float32Array) => {
    const out = (await session.run({ x: new ort.Tensor('float32', xs, [3, 2, 6, 6]) })).logits!.data as Float32Array;
    let l = 0;
    for (let i = 0; i < 3; i++) {
      const row = Array.from(out.subarray(i * 3, i * 3 + 3));
      const mx = Math.max(...row);
      l += Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0)) + mx - row[labels[i]!]!;
    }
    return l / 3;
  };
}

describe('input gradients against finite differences: conv, BatchNorm (eval), each activation or arithmetic op, pooling, Gemm', () => {
  const one = (op: string, attrs?: NodeSpec['attrs']): NodeSpec[] => [{ op, inputs: ['bn'], outputs: ['r'], attrs }];
  // Positive arguments for Sqrt, Log and Pow: bn^2 + 0.5.
  const positive = (op: string, extra: string[] = []): NodeSpec[] => [{ op: 'Mul', inputs: ['bn', 'bn'], outputs: ['sq'] }, { op: 'Add', inputs: ['sq', 'half'], outputs: ['p'] },
    { op, inputs: ['p', ...extra], outputs: ['r'] }];
  const consts: InitSpec[] = [{ name: 'half', dims: [], float: [0.5] }, { name: 'e', dims: [], float: [1.5] }, { name: 'mc', dims: [4, 1, 1], float: [0, 0.5, -0.5, 1] },
    { name: 'zero', dims: [], float: [0] }, { name: 'lg', dims: [4, 6, 6], float: Array.from(randoms(144, 70), (v) => 1 + 0.5 * v) }, { name: 'es', dims: [4], int64: [1, 4, 6, 6] }, { name: 'sz', dims: [2], int64: [1, 3] },
    { name: 'st', dims: [2], int64: [1, 2] }, { name: 'en', dims: [2], int64: [-1, 6] }, { name: 'ax', dims: [2], int64: [2, 3] }];
  const acts: [string, NodeSpec[], number?][] = [['Relu', one('Relu')], ['Elu', one('Elu', { alpha: { float: 0.5 } })], ['Selu', one('Selu')], ['HardSigmoid', one('HardSigmoid', { alpha: { float: 1 / 6 }, beta: { float: 0.5 } })],
    ['HardSwish', one('HardSwish'), 14], ['Tanh', one('Tanh')], ['Softplus', one('Softplus')], ['Neg', one('Neg')], ['Exp', one('Exp')], ['Abs', one('Abs')],
    ['Sqrt', positive('Sqrt')], ['Log', positive('Log')], ['Pow', positive('Pow', ['e'])], ['Max', [{ op: 'Max', inputs: ['bn', 'mc'], outputs: ['r'] }]],
    ['Min', [{ op: 'Min', inputs: ['bn', 'mc'], outputs: ['r'] }]], ['PRelu', [{ op: 'PRelu', inputs: ['bn', 'mc'], outputs: ['r'] }]],
    ['Slice', [{ op: 'Slice', inputs: ['bn', 'st', 'en', 'ax'], outputs: ['r'] }]], ['Erf', one('Erf')],
    ['Where', [{ op: 'Greater', inputs: ['bn', 'zero'], outputs: ['c'] }, { op: 'Mul', inputs: ['bn', 'mc'], outputs: ['sw'] }, { op: 'Where', inputs: ['c', 'bn', 'sw'], outputs: ['r'] }]],
    ['ReduceMax (then Expand back)', [{ op: 'ReduceMax', inputs: ['bn'], outputs: ['mx'], attrs: { axes: [2], keepdims: 1 } }, { op: 'Expand', inputs: ['mx', 'es'], outputs: ['r'] }]],
    ['Split (both parts, swapped)', [{ op: 'Split', inputs: ['bn', 'sz'], outputs: ['p1', 'p2'], attrs: { axis: 1 } }, { op: 'Concat', inputs: ['p2', 'p1'], outputs: ['r'], attrs: { axis: 1 } }]],
    ['LayerNormalization (over C, H, W)', [{ op: 'LayerNormalization', inputs: ['bn', 'lg'], outputs: ['r'], attrs: { axis: 1 } }], 17],
    ['MatMul (two computed maps)', [{ op: 'Relu', inputs: ['bn'], outputs: ['rl'] }, { op: 'MatMul', inputs: ['bn', 'rl'], outputs: ['r'] }]]];
  for (const [op, nodes, opset] of acts) {
    it(`${op}: the input gradient matches central finite differences (eval mode)`, async () => {
      // A scale of 4 before the activation puts its kinks (0, +-3) among the values.
      const bytes = smallModel([4.8, 3.2, 4, 2], [0.4, 0.8, -0.4, 1.2], nodes, opset, consts);
      const path = join(mkdtempSync(join(tmpdir(), 'nad-act-')), `${op}.onnx`);
      writeFileSync(path, bytes);
      const model = TrainableModel.fromFile(path);
      const x = Float32Array.from(randoms(3 * 2 * 36, 51));
      const labels = Int32Array.from([2, 0, 1]);
      const r = await gradientsOf(model, { terms: [crossEntropyTerm(3)], input: true, params: false, batchNorm: 'eval' }, x, labels);
      model.dispose();
      const g = r.grads.get(INPUT_GRADIENT)!;
      const loss = await smallLoss(bytes, labels);
      // Relative: Exp of scaled maps gives large logits, whose float32 loss carries a larger absolute rounding.
      expect(Math.abs(r.total - (await loss(x)))).toBeLessThan(2e-5 * Math.max(1, Math.abs(r.total)));
      const h = 1e-3;
      for (let t = 0; t < 3; t++) {
        // Sparse directions (about 40 of 216 coordinates): a dense one pushes some values across a kink of the
        // piecewise-linear activations, where a finite difference is not the derivative.
        const dense = randoms(x.length, 60 + t);
        const v = dense.map((d, i) => (Math.abs(Math.sin(i * 7.3 + t)) > 0.96 ? d : 0));
        const fd = ((await loss(x.map((xi, i) => xi + h * v[i]!))) - (await loss(x.map((xi, i) => xi - h * v[i]!)))) / (2 * h);
        const dot = g.reduce((a, gi, i) => a + gi * v[i]!, 0);
        expect(Math.abs(fd - dot), `direction ${t}: finite difference ${fd}, gradient ${dot}`).toBeLessThan(5e-3 * Math.abs(dot) + 2e-4);
      }
    });
  }
});

describe('BatchNorm masks and noise (the pass ANP needs)', () => {
  it('gradients with respect to masks and noise match finite differences; mask 1 and noise 0 change nothing', async () => {
    const S = [1.2, 0.8, 1, 0.5], B = [0.1, 0.2, -0.1, 0.3];
    const path = join(mkdtempSync(join(tmpdir(), 'nad-mask-')), 'small.onnx');
    writeFileSync(path, smallModel(S, B));
    const model = TrainableModel.fromFile(path);
    const x = Float32Array.from(randoms(3 * 2 * 36, 41));
    const labels = Int32Array.from([1, 0, 2]);
    const nhwc = nchwToNhwc(x, 3, 2, 6, 6);
    const store = new ParameterStore(model);
    const e = await createEngine(model, store, { terms: [crossEntropyTerm(3)], params: false, masks: true, batchNorm: 'eval' }, { choice: 'onnxruntime' });
    expect(e.masks.map((m) => m.channels)).toEqual([4]);
    const m = e.masks[0]!;
    const batch = { nhwc, nchw: x, labels, n: 3 };
    const plain = await gradientsOf(model, { terms: [crossEntropyTerm(3)], batchNorm: 'eval' }, x, labels);
    expect((await e.gradients(batch, store.values())).total).toBeCloseTo(plain.total, 6);
    const mask = [0.9, 1.1, 0.7, 1], noiseW = [0.05, -0.1, 0, 0.02], noiseB = [0.1, 0, -0.2, 0.05];
    const values = new Map([...store.values(), [m.mask, Float32Array.from(mask)], [m.noiseW, Float32Array.from(noiseW)], [m.noiseB, Float32Array.from(noiseB)]]);
    const r = await e.gradients(batch, values);
    await e.dispose();
    model.dispose();
    // The masked model as a file: scale * (mask + noise_w), shift * (1 + noise_b).
    const lossAt = async (mk: number[], nw: number[], nb: number[]) =>
      (await smallLoss(smallModel(S.map((s, c) => s * (mk[c]! + nw[c]!)), B.map((b, c) => b * (1 + nb[c]!))), labels))(x);
    expect(Math.abs(r.total - (await lossAt(mask, noiseW, noiseB)))).toBeLessThan(1e-5);
    const h = 1e-3;
    for (const [name, base] of [[m.mask, mask], [m.noiseW, noiseW], [m.noiseB, noiseB]] as const) {
      const g = r.grads.get(name)!;
      expect(g.length).toBe(4);
      for (let c = 0; c < 4; c++) {
        const at = (d: number) => base.map((v, k) => (k === c ? v + d : v));
        const args = (d: number): [number[], number[], number[]] => (name === m.mask ? [at(d), noiseW, noiseB] : name === m.noiseW ? [mask, at(d), noiseB] : [mask, noiseW, at(d)]);
        const fd = ((await lossAt(...args(h))) - (await lossAt(...args(-h)))) / (2 * h);
        expect(Math.abs(fd - g[c]!), `${name}[${c}]: finite difference ${fd}, gradient ${g[c]}`).toBeLessThan(5e-3 * Math.abs(fd) + 2e-4);
      }
    }
  });
  it('cover restored BatchNorms too: a folded WRN-16-1 gets a mask per BatchNorm, and mask 1 / noise 0 leave the loss as it was', async () => {
    const model = TrainableModel.fromFile(modelPath('wrn16_1'));
    const x = Float32Array.from(REF.x_nchw), labels = Int32Array.from(REF.labels);
    model.restoreFoldedBatchNorm(tf.tensor4d(nchwToNhwc(x, 4, 1, 32, 32), [4, 32, 32, 1]));
    const store = new ParameterStore(model);
    const e = await createEngine(model, store, { terms: [crossEntropyTerm(10)], masks: true }, { choice: 'onnxruntime' });
    const batch = { nhwc: nchwToNhwc(x, 4, 1, 32, 32), nchw: x, labels, n: 4 };
    const masked = await e.gradients(batch, store.values());
    await e.dispose();
    const bnNodes = model.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length;
    expect(e.masks.length).toBe(bnNodes + model.folded.length);
    expect(model.folded.length).toBeGreaterThan(0);
    const plain = await gradientsOf(model, { terms: [crossEntropyTerm(10)] }, x, labels);
    model.dispose();
    expect(Math.abs(masked.total - plain.total)).toBeLessThan(1e-6 * plain.total);
    for (const m of e.masks) expect(masked.grads.get(m.mask)!.length).toBe(m.channels);
  });
});

describe('a term against a frozen reference model', () => {
  it('T^2 KL(reference || model) at temperature T: value and gradient equal their closed forms', async () => {
    // logits = the input itself (Flatten + identity Gemm), so the input gradient is the logit gradient.
    const path = join(mkdtempSync(join(tmpdir(), 'nad-kd-')), 'identity.onnx');
    writeFileSync(path, buildModel({
      inputs: [{ name: 'x', dims: [2, 3, 1, 1] }], outputs: ['logits'],
      nodes: [{ op: 'Flatten', inputs: ['x'], outputs: ['f'] }, { op: 'Gemm', inputs: ['f', 'w', 'b'], outputs: ['logits'], attrs: { transB: 1 } }],
      inits: [{ name: 'w', dims: [3, 3], float: [1, 0, 0, 0, 1, 0, 0, 0, 1] }, { name: 'b', dims: [3], float: [0, 0, 0] }],
    }));
    const model = TrainableModel.fromFile(path);
    const z = Float32Array.from([0.5, -1, 2, 1.5, 0.2, -0.3]), ref = Float32Array.from([1, 0, -1, 0.3, 0.3, 2]);
    const T = 2;
    const store = new ParameterStore(model);
    const e = await createEngine(model, store, { terms: [referenceDistillationTerm(3, T, 1)], input: true, params: false }, { choice: 'onnxruntime' });
    const r = await e.gradients({ nhwc: z, nchw: z, labels: Int32Array.from([0, 0]), n: 2, extras: { [REFERENCE_LOGITS]: ref } }, store.values());
    await e.dispose();
    model.dispose();
    const softmax = (v: number[]) => { const m = Math.max(...v); const ex = v.map((x) => Math.exp(x - m)); const s = ex.reduce((a, b) => a + b); return ex.map((x) => x / s); };
    let kl = 0;
    const grad: number[] = [];
    for (let i = 0; i < 2; i++) {
      const p = softmax(Array.from(ref.subarray(3 * i, 3 * i + 3), (v) => v / T)), q = softmax(Array.from(z.subarray(3 * i, 3 * i + 3), (v) => v / T));
      kl += p.reduce((a, pk, k) => a + pk * Math.log(pk / q[k]!), 0);
      q.forEach((qk, k) => grad.push((T * (qk - p[k]!)) / 2));
    }
    expect(Math.abs(r.total - (T * T * kl) / 2)).toBeLessThan(1e-6);
    expect(maxAbsDiff(r.grads.get(INPUT_GRADIENT)!, grad)).toBeLessThan(1e-6);
  });
});

describe('optimisers and schedules', () => {
  it('Adam (weight decay) gives torch.optim.Adam\'s values step by step', async () => {
    const a = REF.adam;
    const model = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
    const store = new ParameterStore(model);
    model.dispose();
    // A stand-in entry of the right size: the optimiser works on any trainable store entry.
    store.entries.set('p', { value: Float32Array.from(a.initial), dims: [3, 4], role: 'weight', trainable: true });
    const adam = new Adam({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: a.weight_decay });
    a.grads.forEach((g, i) => {
      adam.step(store, new Map([['p', Float32Array.from(g)]]), a.lr);
      expect(maxAbsDiff(store.get('p').value, a.values[i]!), `step ${i + 1}`).toBeLessThan(1e-6);
    });
    // Its state round-trips through a checkpoint.
    const again = new Adam({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: a.weight_decay });
    again.setState(adam.state());
    expect([...again.state().keys()].sort()).toEqual(['p#m', 'p#t', 'p#v']);
  });

  it('cosine annealing gives torch\'s CosineAnnealingLR per epoch', () => {
    const c = REF.cosine;
    c.lrs.forEach((lr, e) => expect(Math.abs(lrAt({ kind: 'cosine', lr: c.lr, epochs: c.epochs }, e) - lr)).toBeLessThan(1e-12));
  });
});

describe('engine choice', () => {
  it('--engine tfjs for a spec the tfjs engine cannot run is bad input; auto on a GPU build falls back to onnxruntime and says why', async () => {
    const model = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
    const store = new ParameterStore(model);
    const spec: GradientSpec = { terms: [crossEntropyTerm(10)], input: true, batchNorm: 'eval' };
    const err = await createEngine(model, store, spec, { choice: 'tfjs', method: 'scan' }).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toMatch(/^--engine tfjs: cannot run --method scan \(no gradients with respect to the input on the tfjs engine\)/);
    const logs: string[] = [];
    const e = await createEngine(model, store, spec, { choice: 'auto', preferTfjs: true, onLog: (l) => logs.push(l) });
    expect(e.name).toBe('onnxruntime');
    expect(logs).toEqual(['engine: onnxruntime (the tfjs engine has no gradients with respect to the input, which this method needs)']);
    await e.dispose();
    const t = await createEngine(model, store, { terms: [crossEntropyTerm(10)] }, { choice: 'auto', preferTfjs: true });
    expect(t.name).toBe('tfjs');
    model.dispose();
  });
});
