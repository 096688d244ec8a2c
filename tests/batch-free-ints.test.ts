/** Integer tensors computed from Shape are constants to the training graph only when the batch size cannot change them. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TrainableModel } from '../src/import/trainable-model.js';
import { buildModel, randoms } from './helpers/onnx-builder.js';
import { wasm } from './helpers/fixtures.js';

beforeAll(wasm);

describe('batch-free shape arithmetic', () => {
  it('channel and spatial sizes fold to constants; anything touched by the batch size does not', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nad-bfi-')), 'm.onnx');
    writeFileSync(path, buildModel({
      inputs: [{ name: 'x', dims: [2, 3, 8, 8] }], outputs: ['logits'],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w1'], outputs: ['a'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
        { op: 'Shape', inputs: ['a'], outputs: ['s'] },
        { op: 'Gather', inputs: ['s', 'i0'], outputs: ['n'], attrs: { axis: 0 } },
        { op: 'Gather', inputs: ['s', 'i1'], outputs: ['c'], attrs: { axis: 0 } },
        { op: 'Div', inputs: ['c', 'two'], outputs: ['half'] },
        { op: 'Cast', inputs: ['half'], outputs: ['halfF'], attrs: { to: 1 } },
        { op: 'Div', inputs: ['halfF', 'threeF'], outputs: ['thirdF'] },
        { op: 'Cast', inputs: ['thirdF'], outputs: ['third'], attrs: { to: 7 } },
        { op: 'Concat', inputs: ['n', 'c', 'i1'], outputs: ['mixed'], attrs: { axis: 0 } },
        { op: 'Shape', inputs: ['a'], outputs: ['hw'], attrs: { start: 2 } },
        { op: 'Mul', inputs: ['hw', 'two'], outputs: ['hw2'] },
        { op: 'GlobalAveragePool', inputs: ['a'], outputs: ['g'] }, { op: 'Flatten', inputs: ['g'], outputs: ['f'] },
        { op: 'Gemm', inputs: ['f', 'w3', 'b3'], outputs: ['logits'], attrs: { transB: 1 } },
      ],
      inits: [
        { name: 'w1', dims: [6, 3, 3, 3], float: Array.from(randoms(162, 1)) },
        { name: 'i0', dims: [1], int64: [0] }, { name: 'i1', dims: [1], int64: [1] }, { name: 'two', dims: [], int64: [2] },
        { name: 'threeF', dims: [], float: [2] },
        { name: 'w3', dims: [5, 6], float: Array.from(randoms(30, 3)) }, { name: 'b3', dims: [5], float: [0, 0, 0, 0, 0] },
      ],
    }));
    const m = TrainableModel.fromFile(path);
    const f = m.batchFreeInts;
    m.dispose();
    expect(f.get('c')).toEqual([6]);
    expect(f.get('half')).toEqual([3]);
    expect(f.get('third')).toEqual([1]); // 3 / 2.0 = 1.5, truncated by the Cast back to int64
    expect(f.get('hw2')).toEqual([16, 16]);
    expect(f.has('n')).toBe(false); // the batch size
    expect(f.has('s')).toBe(false);
    expect(f.has('mixed')).toBe(false); // one batch element taints the vector
    expect(f.has('halfF')).toBe(false); // floats are not integer constants
  });
});
