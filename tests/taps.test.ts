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
