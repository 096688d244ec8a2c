/** Residual-group taps come from the graph's structure, not from node names. */
import { beforeAll, describe, expect, it } from 'vitest';
import { TrainableModel } from '../src/import/trainable-model.js';
import { modelPath, wasm } from './helpers/fixtures.js';

beforeAll(wasm);

const shapes = (name: string) => {
  const m = TrainableModel.fromFile(modelPath(name));
  const s = m.taps.map((t) => t.shape);
  m.dispose();
  return s;
};

describe('tap detection', () => {
  it('WRN-16-1: the three groups of the NAD paper', () => {
    expect(shapes('wrn16_1')).toEqual([[16, 32, 32], [32, 16, 16], [64, 8, 8]]);
  });
  it('WRN-16-1 with anonymised names and unfused BN: the same taps', () => {
    expect(shapes('wrn16_1_anon')).toEqual([[16, 32, 32], [32, 16, 16], [64, 8, 8]]);
    expect(shapes('wrn16_1_unfused')).toEqual([[16, 32, 32], [32, 16, 16], [64, 8, 8]]);
    expect(shapes('external/wrn16_1_opset18')).toEqual([[16, 32, 32], [32, 16, 16], [64, 8, 8]]);
  });
  it('PreAct-ResNet-18 (width 8): layer1..layer4', () => {
    expect(shapes('preact18_w8')).toEqual([[8, 32, 32], [16, 16, 16], [32, 8, 8], [64, 4, 4]]);
  });
  it('torchvision-style ResNet: one tap per stage larger than 1x1, after the block activation', () => {
    const m = TrainableModel.fromFile(modelPath('tvresnet_w16'));
    expect(m.taps.map((t) => t.shape)).toEqual([[16, 8, 8], [32, 4, 4], [64, 2, 2]]);
    for (const t of m.taps) expect(m.graph.producer.get(t.name)!.opType).toBe('Relu');
    m.dispose();
  });
  it('a plain CNN without residual blocks (Conv-BN-Elu-MaxPool stages, as a published backdoored VGG): the last activation of each resolution', async () => {
    const { buildModel, randoms } = await import('./helpers/onnx-builder.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const nodes = [], inits = [];
    let x = 'x', c = 3;
    for (const [k, width] of [8, 16, 32].entries()) {
      for (const j of [0, 1]) {
        const p = `s${k}_${j}`;
        nodes.push({ op: 'Conv', inputs: [x, `${p}_w`, `${p}_b`], outputs: [`${p}_c`], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
          { op: 'Elu', inputs: [`${p}_c`], outputs: [`${p}_e`] });
        inits.push({ name: `${p}_w`, dims: [width, c, 3, 3], float: Array.from(randoms(width * c * 9, 10 * k + j), (v) => v * 0.3) }, { name: `${p}_b`, dims: [width], float: Array(width).fill(0) });
        x = `${p}_e`; c = width;
      }
      nodes.push({ op: 'MaxPool', inputs: [x], outputs: [`p${k}`], attrs: { kernel_shape: [2, 2], strides: [2, 2] } });
      x = `p${k}`;
    }
    nodes.push({ op: 'Flatten', inputs: [x], outputs: ['f'] }, { op: 'Gemm', inputs: ['f', 'fc_w', 'fc_b'], outputs: ['logits'], attrs: { transB: 1 } });
    inits.push({ name: 'fc_w', dims: [10, 32 * 4 * 4], float: Array.from(randoms(10 * 512, 99), (v) => v * 0.05) }, { name: 'fc_b', dims: [10], float: Array(10).fill(0) });
    const path = join(mkdtempSync(join(tmpdir(), 'nad-vgg-')), 'vgg.onnx');
    writeFileSync(path, buildModel({ inputs: [{ name: 'x', dims: [1, 3, 32, 32] }], outputs: ['logits'], nodes, inits }));
    const m = TrainableModel.fromFile(path);
    expect(m.taps.map((t) => [t.name, ...t.shape])).toEqual([['s0_1_e', 8, 32, 32], ['s1_1_e', 16, 16, 16], ['s2_1_e', 32, 8, 8]]);
    expect(m.taps.every((t) => t.rule === 'plain')).toBe(true);
    m.dispose();
  });
  it('--taps overrides by tensor name and refuses unknown or 1x1 tensors', () => {
    const auto = TrainableModel.fromFile(modelPath('wrn16_1'));
    const names = auto.taps.slice(1).map((t) => t.name);
    auto.dispose();
    const m = TrainableModel.fromFile(modelPath('wrn16_1'), names);
    expect(m.taps.map((t) => t.shape)).toEqual([[32, 16, 16], [64, 8, 8]]);
    m.dispose();
    expect(() => TrainableModel.fromFile(modelPath('wrn16_1'), ['nope'])).toThrow(/--taps: 'nope' is not a tensor/);
  });
});
