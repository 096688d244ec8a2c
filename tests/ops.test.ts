/** Per-op parity with onnxruntime on random inputs with negative values. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { buildGraph } from '../src/import/graph.js';
import { GraphRunner } from '../src/import/interpreter.js';
import { loadModel } from '../src/import/load-model.js';
import { nchw } from '../src/import/ops/layout.js';
import { createParameters } from '../src/import/parameters.js';
import { createSession, runModel } from '../src/verify/onnx-runtime.js';
import { wasm, maxAbsDiff, maxAbs } from './helpers/fixtures.js';
import { buildModel, randoms, type InitSpec, type NodeSpec } from './helpers/onnx-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'nad-ops-'));
beforeAll(wasm);

interface Case {
  name: string;
  input: number[];
  nodes: NodeSpec[];
  inits?: InitSpec[];
  opset?: number;
}

const W = (name: string, dims: number[], seed: number): InitSpec => ({ name, dims, float: Array.from(randoms(dims.reduce((a, b) => a * b, 1), seed)) });
const I = (name: string, values: number[]): InitSpec => ({ name, dims: [values.length], int64: values });
const one = (op: string, attrs?: NodeSpec['attrs'], extra: string[] = []): NodeSpec[] => [{ op, inputs: ['x', ...extra], outputs: ['y'], attrs }];

const cases: Case[] = [
  { name: 'Conv stride 2 pads', input: [2, 3, 9, 9], nodes: one('Conv', { strides: [2, 2], pads: [1, 1, 1, 1] }, ['w', 'b']), inits: [W('w', [4, 3, 3, 3], 1), W('b', [4], 2)] },
  { name: 'Conv asymmetric pads + dilation', input: [1, 3, 8, 8], nodes: one('Conv', { dilations: [2, 2], pads: [0, 1, 2, 1] }, ['w']), inits: [W('w', [5, 3, 3, 3], 3)] },
  { name: 'Conv groups', input: [2, 4, 6, 6], nodes: one('Conv', { group: 2, pads: [1, 1, 1, 1] }, ['w']), inits: [W('w', [6, 2, 3, 3], 4)] },
  { name: 'Conv depthwise', input: [2, 3, 6, 6], nodes: one('Conv', { group: 3, pads: [1, 1, 1, 1] }, ['w']), inits: [W('w', [3, 1, 3, 3], 5)] },
  { name: 'Conv SAME_UPPER stride 2', input: [1, 2, 7, 7], nodes: one('Conv', { auto_pad: 'SAME_UPPER', strides: [2, 2] }, ['w']), inits: [W('w', [3, 2, 3, 3], 6)] },
  { name: 'Conv stride 2 dilation 2', input: [1, 2, 11, 11], nodes: one('Conv', { strides: [2, 2], dilations: [2, 2], pads: [2, 2, 2, 2] }, ['w']), inits: [W('w', [3, 2, 3, 3], 7)] },
  { name: 'BatchNormalization', input: [2, 3, 4, 4], nodes: one('BatchNormalization', { epsilon: 1e-3 }, ['s', 'b', 'm', 'v']), inits: [W('s', [3], 8), W('b', [3], 9), W('m', [3], 10), { name: 'v', dims: [3], float: [0.5, 1.5, 2] }] },
  { name: 'MaxPool k3 s2 p1 (negative inputs)', input: [2, 3, 8, 8], nodes: one('MaxPool', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }) },
  { name: 'MaxPool ceil_mode', input: [1, 2, 7, 7], nodes: one('MaxPool', { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }) },
  { name: 'AveragePool pads, count_include_pad 0', input: [2, 3, 6, 6], nodes: one('AveragePool', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }) },
  { name: 'AveragePool pads, count_include_pad 1', input: [2, 3, 6, 6], nodes: one('AveragePool', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }) },
  { name: 'AveragePool ceil_mode', input: [1, 2, 7, 7], nodes: one('AveragePool', { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }) },
  { name: 'GlobalAveragePool', input: [2, 5, 4, 3], nodes: one('GlobalAveragePool') },
  { name: 'Pad constant', input: [1, 2, 4, 5], nodes: one('Pad', { mode: 'constant' }, ['p', 'c']), inits: [I('p', [0, 0, 1, 2, 0, 0, 2, 1]), { name: 'c', dims: [], float: [0.5] }] },
  { name: 'Pad reflect', input: [1, 2, 4, 5], nodes: one('Pad', { mode: 'reflect' }, ['p']), inits: [I('p', [0, 0, 1, 2, 0, 0, 2, 1])] },
  { name: 'Pad edge', input: [1, 2, 4, 5], nodes: one('Pad', { mode: 'edge' }, ['p']), inits: [I('p', [0, 0, 1, 2, 0, 0, 2, 1])] },
  { name: 'Flatten of a spatial map', input: [2, 3, 4, 5], nodes: one('Flatten', { axis: 1 }) },
  { name: 'Reshape of a spatial map', input: [2, 3, 4, 4], nodes: one('Reshape', {}, ['s']), inits: [I('s', [2, 0, -1])] },
  { name: 'view(x.size(0), -1) chain', input: [2, 3, 2, 2], nodes: [
    { op: 'Shape', inputs: ['x'], outputs: ['s'] },
    { op: 'Gather', inputs: ['s', 'i0'], outputs: ['n'], attrs: { axis: 0 } },
    { op: 'Unsqueeze', inputs: ['n', 'ax'], outputs: ['nu'] },
    { op: 'Concat', inputs: ['nu', 'm1'], outputs: ['shape'], attrs: { axis: 0 } },
    { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] },
  ], inits: [{ name: 'i0', dims: [], int64: [0] }, I('ax', [0]), I('m1', [-1])] },
  { name: 'Concat channels of spatial maps', input: [2, 3, 4, 4], nodes: [
    { op: 'Relu', inputs: ['x'], outputs: ['r'] },
    { op: 'Concat', inputs: ['x', 'r'], outputs: ['y'], attrs: { axis: 1 } },
  ] },
  { name: 'Transpose', input: [2, 3, 4, 5], nodes: one('Transpose', { perm: [0, 2, 3, 1] }) },
  { name: 'ReduceMean (2,3) keepdims 0', input: [2, 3, 4, 5], nodes: one('ReduceMean', { axes: [2, 3], keepdims: 0 }) },
  { name: 'ReduceMean (1) keepdims 1', input: [2, 3, 4, 5], nodes: one('ReduceMean', { axes: [1], keepdims: 1 }) },
  { name: 'Squeeze + Unsqueeze', input: [2, 3, 1, 1], nodes: [
    { op: 'Squeeze', inputs: ['x', 'a'], outputs: ['s'] },
    { op: 'Unsqueeze', inputs: ['s', 'b'], outputs: ['y'] },
  ], inits: [I('a', [2, 3]), I('b', [1])] },
  { name: 'Gemm transB alpha beta', input: [3, 5], nodes: one('Gemm', { transB: 1, alpha: 0.5, beta: { float: 2 } }, ['w', 'c']), inits: [W('w', [4, 5], 11), W('c', [4], 12)] },
  { name: 'Gemm transA', input: [5, 3], nodes: one('Gemm', { transA: 1 }, ['w']), inits: [W('w', [5, 4], 13)] },
  { name: 'MatMul', input: [3, 5], nodes: one('MatMul', {}, ['w']), inits: [W('w', [5, 2], 14)] },
  { name: 'MatMul channels-last Linear [N,H,W,C] x [C,K]', input: [2, 3, 4, 5], nodes: one('MatMul', {}, ['w']), inits: [W('w', [5, 6], 17)] },
  { name: 'MatMul batched, weight broadcast over the batch', input: [2, 3, 4, 5], nodes: one('MatMul', {}, ['w']), inits: [W('w', [3, 5, 2], 18)] },
  { name: 'MatMul of two computed maps', input: [2, 3, 4, 4], nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['r'] }, { op: 'MatMul', inputs: ['x', 'r'], outputs: ['y'] }] },
  { name: 'Erf', input: [2, 3, 4, 4], nodes: one('Erf') },
  { name: 'Split channels by sizes (opset 13), parts recombined', input: [2, 5, 3, 3], nodes: [
    { op: 'Split', inputs: ['x', 'sz'], outputs: ['p1', 'p2'], attrs: { axis: 1 } },
    { op: 'Mul', inputs: ['p1', 'p1'], outputs: ['q1'] }, { op: 'Concat', inputs: ['p2', 'q1'], outputs: ['y'], attrs: { axis: 1 } },
  ], inits: [I('sz', [2, 3])] },
  { name: 'Split into equal parts (opset 18 num_outputs, last part smaller)', input: [2, 3, 5, 2], opset: 18, nodes: [
    { op: 'Split', inputs: ['x'], outputs: ['p1', 'p2'], attrs: { axis: 2, num_outputs: 2 } }, { op: 'Sub', inputs: ['p1', 'p1'], outputs: ['z'] },
    { op: 'Concat', inputs: ['p2', 'p1'], outputs: ['y'], attrs: { axis: 2 } },
  ] },
  { name: 'Expand a per-image map over channels', input: [2, 1, 4, 4], nodes: one('Expand', {}, ['es']), inits: [I('es', [1, 3, 1, 1])] },
  { name: 'Where with a computed condition', input: [2, 3, 4, 4], nodes: [
    { op: 'Greater', inputs: ['x', 'thr'], outputs: ['c'] }, { op: 'Mul', inputs: ['x', 'tenth'], outputs: ['s'] },
    { op: 'Where', inputs: ['c', 'x', 's'], outputs: ['y'] },
  ], inits: [{ name: 'thr', dims: [], float: [0.1] }, { name: 'tenth', dims: [1, 3, 1, 1], float: [0.1, 0.2, 0.3] }] },
  { name: 'ReduceSum over channels (axes input)', input: [2, 3, 4, 4], nodes: one('ReduceSum', { keepdims: 1 }, ['ra']), inits: [I('ra', [1])] },
  { name: 'ReduceSum over space, keepdims 0', input: [2, 3, 4, 4], nodes: one('ReduceSum', { keepdims: 0 }, ['ra']), inits: [I('ra', [2, 3])] },
  { name: 'LayerNormalization over the last axis (opset 17)', input: [2, 3, 4, 5], opset: 17, nodes: one('LayerNormalization', { axis: -1, epsilon: { float: 1e-5 } }, ['lg', 'lb']),
    inits: [W('lg', [5], 19), W('lb', [5], 20)] },
  { name: 'LayerNormalization over C, H, W without bias (opset 17)', input: [2, 3, 4, 5], opset: 17, nodes: one('LayerNormalization', { axis: 1 }, ['lg3']), inits: [W('lg3', [3, 4, 5], 21)] },
  { name: 'ReduceMax over channels', input: [2, 3, 4, 4], nodes: one('ReduceMax', { axes: [1], keepdims: 1 }) },
  { name: 'ReduceMax over rows, keepdims 0', input: [2, 3, 4, 5], nodes: one('ReduceMax', { axes: [-2], keepdims: 0 }) },
  { name: 'Add/Sub/Mul/Div with per-channel constants', input: [2, 3, 4, 4], nodes: [
    { op: 'Add', inputs: ['x', 'a'], outputs: ['t1'] },
    { op: 'Mul', inputs: ['t1', 'm'], outputs: ['t2'] },
    { op: 'Sub', inputs: ['t2', 'x'], outputs: ['t3'] },
    { op: 'Div', inputs: ['t3', 'd'], outputs: ['y'] },
  ], inits: [W('a', [3, 1, 1], 15), W('m', [1, 3, 1, 1], 16), { name: 'd', dims: [1], float: [1.7] }] },
  { name: 'Clip (opset 13 inputs)', input: [2, 3, 4, 4], nodes: one('Clip', {}, ['lo', 'hi']), inits: [{ name: 'lo', dims: [], float: [-0.2] }, { name: 'hi', dims: [], float: [0.3] }] },
  { name: 'LeakyRelu', input: [2, 3, 4, 4], nodes: one('LeakyRelu', { alpha: 0.1 }) },
  { name: 'Slice channels and rows (negative end, INT64 max end)', input: [2, 5, 6, 6], nodes: one('Slice', {}, ['st', 'en', 'ax']),
    inits: [I('st', [1, 2]), { name: 'en', dims: [2], int64: [-1, 2 ** 62] }, I('ax', [1, 2])] },
  { name: 'Slice with step 2 (opset 13)', input: [1, 3, 7, 7], nodes: one('Slice', {}, ['st', 'en', 'ax', 'sp']), inits: [I('st', [0, 1]), I('en', [7, 7]), I('ax', [2, 3]), I('sp', [2, 3])] },
  { name: 'PRelu per channel', input: [2, 3, 4, 4], nodes: one('PRelu', {}, ['s']), inits: [{ name: 's', dims: [3, 1, 1], float: [0.25, -0.1, 0.6] }] },
  { name: 'Neg, Exp, Abs', input: [2, 3, 4, 4], nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['n'] }, { op: 'Exp', inputs: ['n'], outputs: ['e'] }, { op: 'Abs', inputs: ['x'], outputs: ['a'] },
    { op: 'Add', inputs: ['e', 'a'], outputs: ['y'] }] },
  { name: 'Sqrt, Log, Pow of a positive map', input: [2, 3, 4, 4], nodes: [{ op: 'Mul', inputs: ['x', 'x'], outputs: ['sq'] }, { op: 'Add', inputs: ['sq', 'half'], outputs: ['p'] },
    { op: 'Sqrt', inputs: ['p'], outputs: ['s'] }, { op: 'Log', inputs: ['p'], outputs: ['l'] }, { op: 'Pow', inputs: ['p', 'e'], outputs: ['w'] },
    { op: 'Add', inputs: ['s', 'l'], outputs: ['sl'] }, { op: 'Add', inputs: ['sl', 'w'], outputs: ['y'] }],
    inits: [{ name: 'half', dims: [], float: [0.5] }, { name: 'e', dims: [], float: [1.5] }] },
  { name: 'Max of three with a per-channel constant, Min', input: [2, 3, 4, 4], nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['n'] },
    { op: 'Max', inputs: ['x', 'n', 'c'], outputs: ['m'] }, { op: 'Min', inputs: ['m', 'x'], outputs: ['y'] }], inits: [W('c', [3, 1, 1], 31)] },
  // Activations of newer architectures, on inputs scaled by 4 so that their kinks (0, +-3) fall inside.
  ...([['Elu', { alpha: { float: 0.5 } }], ['Selu', undefined], ['HardSigmoid', { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }], ['HardSwish', undefined],
    ['Tanh', undefined], ['Softplus', undefined]] as [string, NodeSpec['attrs']][]).map(([op, attrs]): Case => ({
    name: `${op} (input x 4)`, input: [2, 3, 4, 4], opset: op === 'HardSwish' ? 14 : undefined,
    nodes: [{ op: 'Mul', inputs: ['x', 'four'], outputs: ['x4'] }, { op, inputs: ['x4'], outputs: ['y'], attrs }], inits: [{ name: 'four', dims: [], float: [4] }],
  })),
  { name: 'Sigmoid', input: [2, 3, 4, 4], nodes: one('Sigmoid') },
  { name: 'Softmax', input: [3, 7], nodes: one('Softmax', { axis: -1 }) },
  { name: 'LogSoftmax', input: [3, 7], nodes: one('LogSoftmax', { axis: 1 }) },
  { name: 'Identity + Dropout', input: [2, 4], nodes: [
    { op: 'Identity', inputs: ['x'], outputs: ['i'] },
    { op: 'Dropout', inputs: ['i'], outputs: ['y'] },
  ] },
];

describe('per-op parity with onnxruntime', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const bytes = buildModel({ inputs: [{ name: 'x', dims: c.input }], outputs: ['y'], nodes: c.nodes, inits: c.inits, opset: c.opset });
      const path = join(dir, `${c.name.replace(/\W+/g, '_')}.onnx`);
      writeFileSync(path, bytes);
      const count = c.input.reduce((a, b) => a * b, 1);
      const x = randoms(count, 99);
      const session = await createSession(bytes, path);
      const ref = await runModel(session, x, c.input);
      const model = loadModel(path);
      const graph = buildGraph(model);
      const params = createParameters(graph);
      const runner = new GraphRunner(graph, params);
      const got = tf.tidy(() => {
        let xt = tf.tensor(x, c.input);
        if (c.input.length === 4) xt = tf.transpose(xt, [0, 2, 3, 1]);
        const out = runner.run(xt, { training: false }).outputs[0]!;
        return { shape: [...nchw(out).shape], data: Array.from(nchw(out).dataSync()) };
      });
      expect(got.shape).toEqual([...ref.dims]);
      const diff = maxAbsDiff(got.data, ref.data);
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(ref.data)));
      runner.dispose();
      for (const p of params.values()) p.variable.dispose();
    });
  }
});
