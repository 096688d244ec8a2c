/**
 * The onnxruntime training engine against the tfjs engine (itself checked against PyTorch in
 * training-semantics.test.ts): from the same state, one NAD step on the same batch must change every
 * parameter and running statistic the same way, on every fixture architecture (restored BatchNorms,
 * real BatchNorms, MaxPool stem, view() reshape, opset 18 with external data); and per op type on small
 * generated graphs, one SGD step each.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, randoms, type InitSpec, type NodeSpec } from './helpers/onnx-builder.js';
import * as tf from '../src/tf.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import type { EngineChoice } from '../src/training/engine.js';
import { inspect } from '../src/inspect.js';
import { engineSteps, tapsNchw } from './helpers/engine-steps.js';
import { createEngine } from '../src/training/create-engine.js';
import { crossEntropyTerm } from '../src/training/loss/cross-entropy.js';
import { ParameterStore } from '../src/training/parameter-store.js';
import { nhwcToNchw } from '../src/verify/onnx-runtime.js';
import { fmnist, FIXTURE_MODELS, modelPath, relL2, wasm } from './helpers/fixtures.js';

beforeAll(wasm);

async function stepWith(engine: EngineChoice, name: string, steps: number) {
  const model = TrainableModel.fromFile(modelPath(name));
  const d = fmnist('train', 16);
  // Flat backgrounds make the float32 BatchNorm sums of tfjs differ from onnxruntime's exact ones by 1e-5
  // (training-semantics.test.ts); a small fixed texture takes that ill-conditioning out of the comparison.
  for (let i = 0; i < d.x.length; i++) d.x[i] += 0.05 * Math.sin(i * 12.9898);
  const calib = tf.tensor4d(d.x, [16, d.h, d.w, d.c]);
  model.restoreFoldedBatchNorm(calib);
  calib.dispose();
  const before = model.variableState();
  const nchw = nhwcToNchw(d.x, 16, d.h, d.w, d.c);
  // Teacher taps: the model's own taps on a flipped batch, so the attention terms are not zero.
  const flipped = tf.tidy(() => new Float32Array(tf.reverse(tf.tensor4d(d.x, [16, d.h, d.w, d.c]), 2).dataSync()));
  const teacherTaps = tapsNchw(model, flipped, 16);
  const betas = model.taps.map((_, i) => (i === 0 ? 500 : 1000));
  const r = await engineSteps(model, engine, { nhwc: d.x, nchw, labels: d.y, n: 16 }, Array(steps).fill(0.01), { momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, { betas, p: 2, teacherTaps });
  expect(r.name).toBe(engine);
  const losses = r.losses;
  const after = model.variableState();
  const momentum = r.momentum;
  model.dispose();
  const delta = new Map([...after].map(([k, v]) => [k, v.map((x, i) => x - before.get(k)![i]!)]));
  return { delta, losses, momentum };
}

describe('onnxruntime engine matches the tfjs engine', () => {
  for (const name of FIXTURE_MODELS) {
    it(`${name}: one NAD step changes every parameter, statistic and momentum buffer alike`, async () => {
      const ort = await stepWith('onnxruntime', name, 1);
      const tfjs = await stepWith('tfjs', name, 1);
      ort.losses.forEach((l, i) => {
        expect(Math.abs(l.total - tfjs.losses[i]!.total)).toBeLessThan(2e-4 * Math.abs(tfjs.losses[i]!.total));
        expect(l.at.length).toBe(tfjs.losses[i]!.at.length);
      });
      let worst = { name: '', rel: 0 };
      let moved = 0;
      for (const [k, ref] of tfjs.delta) {
        // Running means of restored BatchNorms barely move on the calibration batch (|delta| ~ 1e-7, rounding).
        if (Math.sqrt(ref.reduce((a, v) => a + v * v, 0)) < 1e-5) continue;
        moved++;
        const rel = relL2(ort.delta.get(k)!, ref);
        if (rel > worst.rel) worst = { name: k, rel };
      }
      let worstMomentum = 0;
      expect([...ort.momentum.keys()].sort()).toEqual([...tfjs.momentum.keys()].sort());
      for (const [k, m] of tfjs.momentum) worstMomentum = Math.max(worstMomentum, relL2(ort.momentum.get(k)!, m));
      console.log(`${name}: ${moved} tensors moved; worst relative difference ${worst.rel.toExponential(2)} (${worst.name}), momentum ${worstMomentum.toExponential(2)}`);
      expect(moved).toBeGreaterThan(10);
      // tfjs's float32 BatchNorm sums carry ~1e-5 relative error per layer (onnxruntime's are exact to
      // 2e-7), compounded over 8-20 BatchNorms and attention terms weighted 500-1000.
      expect(worst.rel).toBeLessThan(5e-3);
      expect(worstMomentum).toBeLessThan(5e-3);
    });
  }
});

describe('onnxruntime engine: gradients of every op it differentiates', () => {
  type Nodes = NodeSpec[];
  const A = 'a'; // Conv1 output [N, 4, 8, 8]
  const relu = (i: string, o: string): NodeSpec => ({ op: 'Relu', inputs: [i], outputs: [o] });
  // Each case maps 'a' to 'h' ([N, channels, size, size]); 'pooled' skips the second conv and pooling.
  // The MaxPool cases before Relu see all-negative windows, where tfjs-backend-wasm's own MaxPool gradient
  // is wrong (src/import/ops/pooling.ts works around it); `cpu` cross-checks with tfjs's cpu backend.
  const cases: { name: string; nodes: Nodes; channels: number; size?: number; pooled?: boolean; inits?: InitSpec[]; cpu?: boolean; opset?: number }[] = [
    { name: 'LeakyRelu', nodes: [{ op: 'LeakyRelu', inputs: [A], outputs: ['h'], attrs: { alpha: { float: 0.1 } } }], channels: 4 },
    { name: 'Clip', nodes: [{ op: 'Clip', inputs: [A, 'lo', 'hi'], outputs: ['h'] }], channels: 4, inits: [{ name: 'lo', dims: [], float: [0] }, { name: 'hi', dims: [], float: [0.3] }] },
    { name: 'Sigmoid', nodes: [{ op: 'Sigmoid', inputs: [A], outputs: ['h'] }], channels: 4 },
    // Arithmetic that LayerNorm-as-primitives, GELU and friends export to; positive arguments where the op needs them.
    { name: 'Neg', nodes: [{ op: 'Neg', inputs: [A], outputs: ['h'] }], channels: 4 },
    { name: 'Slice (channels 1:3, rows and columns 1:-1)', channels: 2, nodes: [{ op: 'Slice', inputs: [A, 'st', 'en', 'ax'], outputs: ['h'] }],
      inits: [{ name: 'st', dims: [3], int64: [1, 1, 1] }, { name: 'en', dims: [3], int64: [3, -1, -1] }, { name: 'ax', dims: [3], int64: [1, 2, 3] }] },
    // ShuffleNet's channel split: the bounds come from Shape at run time, but the batch size cannot change them.
    { name: 'Slice with bounds computed from Shape (channels 0:C/2)', channels: 2, inits: [{ name: 'one', dims: [1], int64: [1] }, { name: 'zero', dims: [1], int64: [0] }, { name: 'two', dims: [], int64: [2] }],
      nodes: [{ op: 'Shape', inputs: [A], outputs: ['s'] }, { op: 'Gather', inputs: ['s', 'one'], outputs: ['c'], attrs: { axis: 0 } },
        { op: 'Div', inputs: ['c', 'two'], outputs: ['half'] }, { op: 'Slice', inputs: [A, 'zero', 'half', 'one'], outputs: ['h'] }] },
    { name: 'Erf (GELU as exported)', channels: 4, inits: [{ name: 'rs2', dims: [], float: [Math.SQRT1_2] }, { name: 'one', dims: [], float: [1] }, { name: 'half', dims: [], float: [0.5] }],
      nodes: [{ op: 'Mul', inputs: [A, 'rs2'], outputs: ['s'] }, { op: 'Erf', inputs: ['s'], outputs: ['e'] }, { op: 'Add', inputs: ['e', 'one'], outputs: ['e1'] },
        { op: 'Mul', inputs: [A, 'e1'], outputs: ['xe'] }, { op: 'Mul', inputs: ['xe', 'half'], outputs: ['h'] }] },
    // ConvNeXt's Linear layers: channels last, a 2-D weight applied to every position.
    { name: 'MatMul channels-last Linear (trained 2-D weight)', channels: 4, inits: [{ name: 'wl', dims: [4, 4], float: Array.from(randoms(16, 12), (v) => v * 0.5) }],
      nodes: [{ op: 'Transpose', inputs: [A], outputs: ['t'], attrs: { perm: [0, 2, 3, 1] } }, { op: 'MatMul', inputs: ['t', 'wl'], outputs: ['tl'] },
        { op: 'Transpose', inputs: ['tl'], outputs: ['h'], attrs: { perm: [0, 3, 1, 2] } }] },
    { name: 'MatMul batched (trained 3-D weight broadcast over the batch)', channels: 4, inits: [{ name: 'wb', dims: [4, 8, 8], float: Array.from(randoms(256, 13), (v) => v * 0.3) }],
      nodes: [{ op: 'MatMul', inputs: [A, 'wb'], outputs: ['h'] }] },
    { name: 'MatMul of two computed maps', channels: 4, nodes: [relu(A, 'r'), { op: 'MatMul', inputs: [A, 'r'], outputs: ['h'] }] },
    { name: 'Split channels [1, 3], both parts used', channels: 4, inits: [{ name: 'sz', dims: [2], int64: [1, 3] }],
      nodes: [{ op: 'Split', inputs: [A, 'sz'], outputs: ['p1', 'p2'], attrs: { axis: 1 } }, relu('p1', 'r1'), { op: 'Concat', inputs: ['p2', 'r1'], outputs: ['h'], attrs: { axis: 1 } }] },
    { name: 'Split channels [1, 3], first part unused', channels: 3, inits: [{ name: 'sz', dims: [2], int64: [1, 3] }],
      nodes: [{ op: 'Split', inputs: [A, 'sz'], outputs: ['p1', 'h'], attrs: { axis: 1 } }] },
    { name: 'Expand a channel mean over channels', channels: 4, inits: [{ name: 'es', dims: [4], int64: [1, 4, 1, 1] }],
      nodes: [{ op: 'ReduceMean', inputs: [A], outputs: ['m'], attrs: { axes: [1], keepdims: 1 } }, { op: 'Expand', inputs: ['m', 'es'], outputs: ['e'] },
        { op: 'Mul', inputs: [A, 'e'], outputs: ['h'] }] },
    { name: 'Where (leaky by a computed condition)', channels: 4, inits: [{ name: 'zero', dims: [], float: [0] }, { name: 'tenth', dims: [], float: [0.1] }],
      nodes: [{ op: 'Greater', inputs: [A, 'zero'], outputs: ['c'] }, { op: 'Mul', inputs: [A, 'tenth'], outputs: ['s'] }, { op: 'Where', inputs: ['c', A, 's'], outputs: ['h'] }] },
    { name: 'ReduceSum and ReduceMax over channels', channels: 4, inits: [{ name: 'ra', dims: [1], int64: [1] }],
      nodes: [{ op: 'ReduceSum', inputs: [A, 'ra'], outputs: ['sm'], attrs: { keepdims: 1 } }, { op: 'ReduceMax', inputs: [A], outputs: ['mx'], attrs: { axes: [1], keepdims: 1 } },
        { op: 'Mul', inputs: ['sm', 'mx'], outputs: ['sx'] }, { op: 'Add', inputs: [A, 'sx'], outputs: ['h'] }] },
    { name: 'LayerNormalization channels last (opset 17, scale and bias trained)', channels: 4, opset: 17,
      inits: [{ name: 'lg', dims: [4], float: [1, 0.5, 1.5, 0.8] }, { name: 'lb', dims: [4], float: [0, 0.1, -0.1, 0.2] }],
      nodes: [{ op: 'Transpose', inputs: [A], outputs: ['t'], attrs: { perm: [0, 2, 3, 1] } }, { op: 'LayerNormalization', inputs: ['t', 'lg', 'lb'], outputs: ['tn'], attrs: { axis: -1 } },
        { op: 'Transpose', inputs: ['tn'], outputs: ['h'], attrs: { perm: [0, 3, 1, 2] } }] },
    // nn.LayerNorm as opset-13 exports it (ConvNeXt): its weight and bias are the Mul and Add initializers.
    { name: 'LayerNorm as primitives (opset 13, the Mul and Add initializers trained)', channels: 4,
      inits: [{ name: 'two', dims: [], float: [2] }, { name: 'eps', dims: [], float: [1e-6] }, { name: 'lg', dims: [4], float: [1, 0.5, 1.5, 0.8] }, { name: 'lb', dims: [4], float: [0, 0.1, -0.1, 0.2] }],
      nodes: [{ op: 'Transpose', inputs: [A], outputs: ['t'], attrs: { perm: [0, 2, 3, 1] } },
        { op: 'ReduceMean', inputs: ['t'], outputs: ['mu'], attrs: { axes: [-1], keepdims: 1 } }, { op: 'Sub', inputs: ['t', 'mu'], outputs: ['tc'] },
        { op: 'Pow', inputs: ['tc', 'two'], outputs: ['sq'] }, { op: 'ReduceMean', inputs: ['sq'], outputs: ['var'], attrs: { axes: [-1], keepdims: 1 } },
        { op: 'Add', inputs: ['var', 'eps'], outputs: ['ve'] }, { op: 'Sqrt', inputs: ['ve'], outputs: ['sd'] }, { op: 'Div', inputs: ['tc', 'sd'], outputs: ['tn'] },
        { op: 'Mul', inputs: ['tn', 'lg'], outputs: ['ts'] }, { op: 'Add', inputs: ['ts', 'lb'], outputs: ['tb'] },
        { op: 'Transpose', inputs: ['tb'], outputs: ['h'], attrs: { perm: [0, 3, 1, 2] } }] },
    { name: 'PRelu (per-channel slope, trained)', nodes: [{ op: 'PRelu', inputs: [A, 'slope'], outputs: ['h'] }], channels: 4, inits: [{ name: 'slope', dims: [4, 1, 1], float: [0.25, 0.1, -0.2, 0.5] }] },
    { name: 'PRelu (one shared slope, trained)', nodes: [{ op: 'PRelu', inputs: [A, 'slope1'], outputs: ['h'] }], channels: 4, inits: [{ name: 'slope1', dims: [1], float: [0.25] }] },
    { name: 'Exp', nodes: [{ op: 'Mul', inputs: [A, 'half'], outputs: ['ah'] }, { op: 'Exp', inputs: ['ah'], outputs: ['h'] }], channels: 4, inits: [{ name: 'half', dims: [], float: [0.5] }] },
    ...(['Sqrt', 'Log'] as const).map((op) => ({
      name: op, channels: 4, inits: [{ name: 'half', dims: [], float: [0.5] }],
      nodes: [{ op: 'Mul', inputs: [A, A], outputs: ['sq'] }, { op: 'Add', inputs: ['sq', 'half'], outputs: ['pos'] }, { op, inputs: ['pos'], outputs: ['h'] }] as NodeSpec[],
    })),
    { name: 'Abs', nodes: [{ op: 'Abs', inputs: [A], outputs: ['h'] }], channels: 4 },
    { name: 'Pow (constant exponent 1.5)', channels: 4, inits: [{ name: 'half', dims: [], float: [0.5] }, { name: 'e', dims: [], float: [1.5] }],
      nodes: [{ op: 'Mul', inputs: [A, A], outputs: ['sq'] }, { op: 'Add', inputs: ['sq', 'half'], outputs: ['pos'] }, { op: 'Pow', inputs: ['pos', 'e'], outputs: ['h'] }] },
    { name: 'Max (per-channel constant)', nodes: [{ op: 'Max', inputs: [A, 'mc'], outputs: ['h'] }], channels: 4, inits: [{ name: 'mc', dims: [4, 1, 1], float: [0, 0.1, -0.1, 0.2] }] },
    { name: 'Min of two computed maps', nodes: [{ op: 'Relu', inputs: [A], outputs: ['r'] }, { op: 'Neg', inputs: [A], outputs: ['n'] }, { op: 'Min', inputs: ['r', 'n'], outputs: ['h'] }], channels: 4 },
    ...([['Elu', { alpha: { float: 0.5 } }], ['Selu', undefined], ['HardSigmoid', { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }], ['HardSwish', undefined],
      ['Tanh', undefined], ['Softplus', undefined]] as [string, NodeSpec['attrs']][]).map(([op, attrs]) => ({
      name: `${op} (input x 4)`, channels: 4, opset: op === 'HardSwish' ? 14 : undefined,
      nodes: [{ op: 'Mul', inputs: [A, 'four'], outputs: ['a4'] }, { op, inputs: ['a4'], outputs: ['h'], attrs }] as NodeSpec[], inits: [{ name: 'four', dims: [], float: [4] }],
    })),
    { name: 'Softmax', nodes: [{ op: 'Softmax', inputs: [A], outputs: ['h'], attrs: { axis: 1 } }], channels: 4 },
    { name: 'Mul (both inputs)', nodes: [{ op: 'Mul', inputs: [A, A], outputs: ['h'] }], channels: 4 },
    { name: 'Sub', nodes: [relu(A, 'r'), { op: 'Sub', inputs: [A, 'r'], outputs: ['h'] }], channels: 4 },
    { name: 'Div (broadcast constant)', nodes: [{ op: 'Div', inputs: [A, 's'], outputs: ['h'] }], channels: 4, inits: [{ name: 's', dims: [1, 4, 1, 1], float: [1.5, 2, 0.5, 3] }] },
    { name: 'AveragePool 3x3 s2 p1', nodes: [{ op: 'AveragePool', inputs: [A], outputs: ['h'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } }], channels: 4, size: 4 },
    { name: 'AveragePool 2x2 s2', nodes: [{ op: 'AveragePool', inputs: [A], outputs: ['h'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } }], channels: 4, size: 4 },
    { name: 'MaxPool 3x3 s2 p1', nodes: [{ op: 'MaxPool', inputs: [A], outputs: ['h'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } }], channels: 4, size: 4 },
    { name: 'MaxPool 2x2 s2', nodes: [{ op: 'MaxPool', inputs: [A], outputs: ['h'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } }], channels: 4, size: 4 },
    { name: 'MaxPool 2x2 s2 (tfjs cpu backend as reference)', nodes: [{ op: 'MaxPool', inputs: [A], outputs: ['h'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } }], channels: 4, size: 4, cpu: true },
    { name: 'MaxPool 3x3 s2 p1 after Relu', nodes: [relu(A, 'r'), { op: 'MaxPool', inputs: ['r'], outputs: ['h'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } }], channels: 4, size: 4 },
    { name: 'MaxPool 3x3 s1 p1', nodes: [{ op: 'MaxPool', inputs: [A], outputs: ['h'], attrs: { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] } }], channels: 4 },
    { name: 'depthwise Conv 3x3 s2', nodes: [{ op: 'Conv', inputs: [A, 'wd'], outputs: ['h'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2], group: 4 } }], channels: 4, size: 4,
      inits: [{ name: 'wd', dims: [4, 1, 3, 3], float: Array.from(randoms(36, 9), (v) => v * 0.5) }] },
    { name: 'grouped Conv (2 groups)', nodes: [{ op: 'Conv', inputs: [A, 'wg'], outputs: ['h'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 2 } }], channels: 6,
      inits: [{ name: 'wg', dims: [6, 2, 3, 3], float: Array.from(randoms(108, 10), (v) => v * 0.5) }] },
    { name: 'grouped Conv (80 groups of 2 channels, stride 2)', channels: 160, size: 4,
      nodes: [{ op: 'Concat', inputs: Array(40).fill(A), outputs: ['a160'], attrs: { axis: 1 } },
        { op: 'Conv', inputs: ['a160', 'wg80'], outputs: ['h'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2], group: 80 } }],
      inits: [{ name: 'wg80', dims: [160, 2, 3, 3], float: Array.from(randoms(2880, 14), (v) => v * 0.5) }] },
    // Dense convs whose input fills whole NCHWc blocks (16 channels): the filter gradient runs through blocked one-hot
    // depthwise taps (src/ort-training/gradients/conv.ts), with dilation and asymmetric pads, stride 2, and a 1x1 that
    // needs no shift.
    { name: 'blocked Conv 16 -> 16, dilation 2, pads 2,1,2,3', channels: 16,
      nodes: [{ op: 'Concat', inputs: [A, A, A, A], outputs: ['a16'], attrs: { axis: 1 } },
        { op: 'Conv', inputs: ['a16', 'wb1'], outputs: ['h'], attrs: { kernel_shape: [3, 3], pads: [2, 1, 2, 3], dilations: [2, 2] } }],
      inits: [{ name: 'wb1', dims: [16, 16, 3, 3], float: Array.from(randoms(2304, 15), (v) => v * 0.2) }] },
    { name: 'blocked Conv 16 -> 16, stride 2', channels: 16, size: 4,
      nodes: [{ op: 'Concat', inputs: [A, A, A, A], outputs: ['a16'], attrs: { axis: 1 } },
        { op: 'Conv', inputs: ['a16', 'wb2'], outputs: ['h'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] } }],
      inits: [{ name: 'wb2', dims: [16, 16, 3, 3], float: Array.from(randoms(2304, 16), (v) => v * 0.2) }] },
    { name: 'blocked Conv 16 -> 32, 1x1', channels: 32,
      nodes: [{ op: 'Concat', inputs: [A, A, A, A], outputs: ['a16'], attrs: { axis: 1 } },
        { op: 'Conv', inputs: ['a16', 'wb3'], outputs: ['h'], attrs: { kernel_shape: [1, 1] } }],
      inits: [{ name: 'wb3', dims: [32, 16, 1, 1], float: Array.from(randoms(512, 17), (v) => v * 0.5) }] },
    { name: 'Conv with auto_pad SAME_UPPER, stride 2', nodes: [{ op: 'Conv', inputs: [A, 'wa'], outputs: ['h'], attrs: { kernel_shape: [3, 3], auto_pad: 'SAME_UPPER', strides: [2, 2] } }], channels: 4, size: 4,
      inits: [{ name: 'wa', dims: [4, 4, 3, 3], float: Array.from(randoms(144, 11), (v) => v * 0.3) }] },
    { name: 'BatchNormalization (train mode)', nodes: [{ op: 'BatchNormalization', inputs: [A, 'bs', 'bb', 'bm', 'bv'], outputs: ['h'], attrs: { epsilon: { float: 1e-5 }, momentum: { float: 0.9 } } }], channels: 4,
      inits: [{ name: 'bs', dims: [4], float: [1, 0.5, 2, 1.5] }, { name: 'bb', dims: [4], float: [0, 0.1, -0.2, 0.3] }, { name: 'bm', dims: [4], float: [0.1, 0, 0.2, -0.1] }, { name: 'bv', dims: [4], float: [1, 2, 0.5, 1] }] },
    { name: 'BatchNormalization on N x C', pooled: true, channels: 4,
      nodes: [{ op: 'ReduceMean', inputs: [A], outputs: ['m'], attrs: { axes: [2, 3], keepdims: 0 } }, { op: 'BatchNormalization', inputs: ['m', 'bs', 'bb', 'bm', 'bv'], outputs: ['h'] }],
      inits: [{ name: 'bs', dims: [4], float: [1, 0.5, 2, 1.5] }, { name: 'bb', dims: [4], float: [0, 0.1, -0.2, 0.3] }, { name: 'bm', dims: [4], float: [0.1, 0, 0.2, -0.1] }, { name: 'bv', dims: [4], float: [1, 2, 0.5, 1] }] },
    { name: 'Transpose and back', nodes: [{ op: 'Transpose', inputs: [A], outputs: ['t'], attrs: { perm: [0, 2, 3, 1] } }, { op: 'Transpose', inputs: ['t'], outputs: ['h'], attrs: { perm: [0, 3, 1, 2] } }], channels: 4 },
    { name: 'Concat', nodes: [relu(A, 'r'), { op: 'Concat', inputs: [A, 'r'], outputs: ['h'], attrs: { axis: 1 } }], channels: 8 },
    { name: 'Pad', nodes: [{ op: 'Pad', inputs: [A, 'pads'], outputs: ['h'] }], channels: 4, size: 10, inits: [{ name: 'pads', dims: [8], int64: [0, 0, 1, 1, 0, 0, 1, 1] }] },
    { name: 'Unsqueeze + Squeeze', nodes: [{ op: 'Unsqueeze', inputs: [A, 'ax'], outputs: ['u'] }, { op: 'Squeeze', inputs: ['u', 'ax'], outputs: ['h'] }], channels: 4, inits: [{ name: 'ax', dims: [1], int64: [2] }] },
    { name: 'ReduceMean', nodes: [{ op: 'ReduceMean', inputs: [A], outputs: ['h'], attrs: { axes: [2, 3], keepdims: 1 } }], channels: 4, pooled: true },
    { name: 'GlobalMaxPool', nodes: [{ op: 'GlobalMaxPool', inputs: [A], outputs: ['h'] }], channels: 4, pooled: true },
  ];

  function modelFor(c: (typeof cases)[number]): string {
    const tail: NodeSpec[] = c.pooled
      ? [{ op: 'Flatten', inputs: ['h'], outputs: ['f'] }]
      : [{ op: 'Conv', inputs: ['h', 'w2'], outputs: ['c2'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } }, { op: 'GlobalAveragePool', inputs: ['c2'], outputs: ['g'] }, { op: 'Flatten', inputs: ['g'], outputs: ['f'] }];
    const bytes = buildModel({
      inputs: [{ name: 'x', dims: [6, 3, 8, 8] }], outputs: ['logits'],
      nodes: [{ op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: [A], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } }, ...c.nodes, ...tail,
        { op: 'Gemm', inputs: ['f', 'w3', 'b3'], outputs: ['logits'], attrs: { transB: 1 } }],
      inits: [
        { name: 'w1', dims: [4, 3, 3, 3], float: Array.from(randoms(108, 1), (v) => v * 0.5) }, { name: 'b1', dims: [4], float: [0.1, -0.1, 0.05, 0] },
        { name: 'w2', dims: [6, c.channels, 3, 3], float: Array.from(randoms(6 * c.channels * 9, 2), (v) => v * 0.3) },
        { name: 'w3', dims: [5, c.pooled ? c.channels : 6], float: Array.from(randoms(5 * (c.pooled ? c.channels : 6), 3)) }, { name: 'b3', dims: [5], float: [0, 0.1, 0.2, 0.3, 0.4] },
        ...(c.inits ?? []),
      ],
      opset: c.opset,
    });
    const path = join(mkdtempSync(join(tmpdir(), 'nad-grad-')), 'm.onnx');
    writeFileSync(path, bytes);
    return path;
  }

  /** One SGD step from the file's weights; by default on 6 random 8x8x3 images, plain cross-entropy. */
  async function oneStep(path: string, engine: EngineChoice, nad?: { x: Float32Array; labels: Int32Array; taps: string[]; betas: number[]; teacherTaps: Float32Array[] }) {
    const model = TrainableModel.fromFile(path, nad?.taps);
    const x = nad?.x ?? randoms(6 * 3 * 64, 7);
    const labels = nad?.labels ?? Int32Array.from([0, 1, 2, 3, 4, 0]);
    const [c, h, w] = model.inputShape;
    const nchw = nhwcToNchw(x, labels.length, h, w, c); // x is read as NHWC; onnxruntime takes NCHW
    const before = model.variableState();
    const r = await engineSteps(model, engine, { nhwc: x, nchw, labels, n: labels.length }, [0.1], { momentum: 0.9, nesterov: true, weightDecay: 0 },
      nad && { betas: nad.betas, p: 2, teacherTaps: nad.teacherTaps });
    const l = r.losses[0]!;
    const delta = new Map([...model.variableState()].map(([k, v]) => [k, v.map((w, i) => w - before.get(k)![i]!)]));
    model.dispose();
    return { loss: l.total, delta };
  }

  for (const c of cases) {
    it(`${c.name}: one SGD step equals the tfjs engine's`, async () => {
      const path = modelFor(c);
      const ort = await oneStep(path, 'onnxruntime');
      if (c.cpu) await tf.setBackend('cpu');
      const ref = await oneStep(path, 'tfjs').finally(() => (c.cpu ? tf.setBackend('wasm') : undefined));
      expect(Math.abs(ort.loss - ref.loss)).toBeLessThan(1e-5 * Math.abs(ref.loss));
      for (const [k, d] of ref.delta) {
        expect(d.some((v) => v !== 0), `${k} moved`).toBe(true); // including running statistics
        // The first conv's bias has a zero gradient when a BatchNorm follows: both engines move it by rounding only.
        if (c.nodes.some((n) => n.op === 'BatchNormalization') && k === 'b1') {
          expect(Math.max(...ort.delta.get(k)!.map(Math.abs))).toBeLessThan(1e-6);
          continue;
        }
        expect(relL2(ort.delta.get(k)!, d), k).toBeLessThan(1e-4);
      }
    });
  }

  it('a tap whose attention map is all zero for one image (a blank image through a bias-free conv): finite, equal steps on both engines', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nad-grad-')), 'zero-tap.onnx');
    writeFileSync(path, buildModel({
      inputs: [{ name: 'x', dims: [4, 1, 4, 4] }], outputs: ['logits'],
      nodes: [{ op: 'Conv', inputs: ['x', 'w1'], outputs: ['a'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } }, { op: 'Relu', inputs: ['a'], outputs: ['r'] },
        { op: 'GlobalAveragePool', inputs: ['r'], outputs: ['g'] }, { op: 'Flatten', inputs: ['g'], outputs: ['f'] }, { op: 'Gemm', inputs: ['f', 'w3', 'b3'], outputs: ['logits'], attrs: { transB: 1 } }],
      inits: [{ name: 'w1', dims: [2, 1, 3, 3], float: Array.from(randoms(18, 5)) }, { name: 'w3', dims: [3, 2], float: Array.from(randoms(6, 6)) }, { name: 'b3', dims: [3], float: [0, 0.1, 0.2] }],
    }));
    const x = randoms(64, 8);
    x.fill(0, 0, 16); // image 0 is blank, so its tap 'a' is all zero and the map's norm is 0
    // A constant teacher tap: a uniform normalised teacher map (0.25 at each of the 16 positions).
    const nad = { x, labels: Int32Array.from([0, 1, 2, 0]), taps: ['a'], betas: [1000], teacherTaps: [new Float32Array(4 * 2 * 16).fill(1)] };
    const ort = await oneStep(path, 'onnxruntime', nad), ref = await oneStep(path, 'tfjs', nad);
    expect(Number.isFinite(ort.loss)).toBe(true);
    expect(Math.abs(ort.loss - ref.loss)).toBeLessThan(1e-5 * Math.abs(ref.loss));
    for (const [k, d] of ref.delta) {
      expect(d.every(Number.isFinite), k).toBe(true);
      expect(relL2(ort.delta.get(k)!, d), k).toBeLessThan(1e-4);
    }
  });

  it('a graph the onnxruntime engine cannot differentiate: auto falls back to tfjs, --engine onnxruntime says why', async () => {
    // ReflectionPad2d exports a reflect-mode Pad, which the onnxruntime engine does not differentiate.
    const path = join(mkdtempSync(join(tmpdir(), 'nad-grad-')), 'reflect-pad.onnx');
    writeFileSync(path, buildModel({
      inputs: [{ name: 'x', dims: [2, 3, 4, 4] }], outputs: ['logits'],
      nodes: [{ op: 'Conv', inputs: ['x', 'w0'], outputs: ['c0'], attrs: { kernel_shape: [1, 1] } }, { op: 'Pad', inputs: ['c0', 'pads'], outputs: ['p'], attrs: { mode: 'reflect' } },
        { op: 'Conv', inputs: ['p', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3] } },
        { op: 'GlobalAveragePool', inputs: ['c'], outputs: ['g'] }, { op: 'Flatten', inputs: ['g'], outputs: ['logits'] }],
      inits: [{ name: 'w0', dims: [3, 3, 1, 1], float: Array.from(randoms(9, 5)) }, { name: 'w', dims: [4, 3, 3, 3], float: Array.from(randoms(108, 4)) },
        { name: 'pads', dims: [8], int64: [0, 0, 1, 1, 0, 0, 1, 1] }],
    }));
    const model = TrainableModel.fromFile(path);
    const store = new ParameterStore(model);
    const spec = { terms: [crossEntropyTerm(model.numClasses)] };
    const logs: string[] = [];
    const e = await createEngine(model, store, spec, { choice: 'auto', onLog: (l) => logs.push(l) });
    expect(e.name).toBe('tfjs');
    expect(logs.join('\n')).toMatch(/Pad other than constant mode/);
    // `inspect` tells the same in advance.
    expect((await inspect(path)).engine).toEqual({ name: 'tfjs', reason: expect.stringMatching(/Pad other than constant mode/) });
    expect((await inspect(modelPath('tvresnet_w16'))).engine.name).toBe('onnxruntime');
    await expect(createEngine(model, store, spec, { choice: 'onnxruntime' })).rejects.toThrow(/--engine onnxruntime: cannot train this graph .*Pad other than constant mode.*use --engine tfjs/);
    model.dispose();
  });
});

describe('NCHWc convolutions (onnxruntime\'s blocked kernels with fed weights)', () => {
  it('the training graph runs its dense convolutions blocked where onnxruntime has the kernels; the same loss and gradients as plain Conv', async () => {
    const { OrtEngine } = await import('../src/ort-training/ort-engine.js');
    const { nchwcBlockSize, NCHWC_DOMAIN } = await import('../src/ort-training/nchwc-conv.js');
    const block = await nchwcBlockSize();
    const model = TrainableModel.fromFile(modelPath('wrn16_1'));
    const d = fmnist('train', 8);
    const batch = { nhwc: d.x, nchw: nhwcToNchw(d.x, 8, d.h, d.w, d.c), labels: d.y, n: 8 };
    const store = new ParameterStore(model);
    const spec = { terms: [crossEntropyTerm(10)], input: true };
    const blocked = await OrtEngine.create(model, store, spec);
    const plain = await OrtEngine.create(model, store, spec, { nchwcBlock: 0 });
    try {
      const { onnx } = await import('../src/onnx/onnx-schema.js');
      const domains = (e: typeof plain) => onnx.ModelProto.decode(e.graph.bytes).graph!.node!.filter((n) => n.domain === NCHWC_DOMAIN).length;
      expect(domains(plain)).toBe(0);
      console.log(`NCHWc block ${block}: ${domains(blocked)} blocked nodes`);
      // Where the CPU has the blocked kernels (x86-64 with AVX2 or AVX-512), every conv of WRN-16-1 but the first (1 input channel)
      // qualifies: their channels are 16, 32 and 64.
      if (block) expect(domains(blocked)).toBeGreaterThan(30);
      const a = await plain.gradients(batch, store.values()), b = await blocked.gradients(batch, store.values());
      expect(Math.abs(b.total - a.total)).toBeLessThan(1e-5 * a.total);
      for (const [k, g] of a.grads) expect(relL2(b.grads.get(k)!, g), k).toBeLessThan(1e-4);
      a.stats.forEach((s, i) => expect(relL2(b.stats[i]!.varUnbiased, s.varUnbiased)).toBeLessThan(1e-5));
    } finally {
      await blocked.dispose();
      await plain.dispose();
      model.dispose();
    }
  });
});
