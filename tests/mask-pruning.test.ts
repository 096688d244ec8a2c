/**
 * Pruning by learned masks (ANP, RNP): the clean-accuracy rule prunes the most it can within its points of
 * held-back accuracy, and nothing when even its first level costs more. Masks are clipped to [0, 1], so that
 * first level (mask <= 0) can hold most of the channels, as RNP's masks after unlearning do.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import type { Dataset } from '../src/data/dataset.js';
import { pruneByMasks, scaleParameter } from '../src/defences/mask-pruning.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import type { BatchNormMask } from '../src/training/engine.js';
import { ParameterStore } from '../src/training/parameter-store.js';
import { fmnist, modelPath, wasm } from './helpers/fixtures.js';

function setup() {
  const model = TrainableModel.fromFile(modelPath('wrn16_1'));
  const d = fmnist('test', 256);
  const x = tf.tensor4d(d.x, [d.n, d.h, d.w, d.c]);
  model.restoreFoldedBatchNorm(x);
  x.dispose();
  const store = new ParameterStore(model);
  const held: Dataset = { source: 'fmnist-test', x: d.x, labels: d.y, n: d.n, h: d.h, w: d.w, c: d.c };
  const bns: BatchNormMask[] = [...model.runner.restored.keys()].map((node) => ({
    node, channels: store.get(model.runner.restored.get(node)!.gammaName).value.length, mask: `mask:${node}`, noiseW: '', noiseB: '',
  }));
  return { model, store, held, bns };
}

describe('pruneByMasks with --prune-by clean-acc', () => {
  beforeAll(wasm);

  it('prunes nothing when the channels at mask 0 already cost more than the points, and leaves the weights as they were', () => {
    const { model, store, held, bns } = setup();
    expect(bns.length).toBeGreaterThan(0);
    // Every channel but one per layer at 0: pruning at the first level would leave one channel per BatchNorm.
    const masks = new Map(bns.map((m) => [m.mask, Float32Array.from({ length: m.channels }, (_, k) => (k === 0 ? 1 : 0))]));
    const before = new Map(bns.map((m) => [scaleParameter(model, m), store.get(scaleParameter(model, m)).value.slice()]));
    const logs: string[] = [];
    const p = pruneByMasks('rnp', model, store, bns, masks, { kind: 'clean-acc', points: 2 }, { held, log: (l) => logs.push(l) });
    expect(p).toMatchObject({ threshold: null, pruned: 0 });
    for (const [name, v] of before) expect(Array.from(store.get(name).value), name).toEqual(Array.from(v));
    // It did try the first level and found it too costly.
    expect(logs[0]).toMatch(/^rnp: threshold 0\.00: held-back accuracy [\d.]+ % \(unpruned [\d.]+ %\)$/);
    expect(logs[logs.length - 1]).toMatch(/^rnp: pruned none of \d+ BatchNorm channels/);
    model.dispose();
  });

  it('prunes the channels whose loss stays within the points: the smallest BatchNorm scale, mask 0', () => {
    const { model, store, held, bns } = setup();
    // One channel at mask 0: the one of the last restored BatchNorm with the smallest |gamma|, which costs least.
    const last = bns[bns.length - 1]!;
    const gamma = store.get(scaleParameter(model, last)).value;
    let k0 = 0;
    for (let k = 1; k < gamma.length; k++) if (Math.abs(gamma[k]!) < Math.abs(gamma[k0]!)) k0 = k;
    // The others at 0.12: the level 0.15 would empty every layer, so the search stops after 0, 0.05 and 0.1.
    const masks = new Map(bns.map((m) => [m.mask, Float32Array.from({ length: m.channels }, (_, k) => (m === last && k === k0 ? 0 : 0.12))]));
    const p = pruneByMasks('anp', model, store, bns, masks, { kind: 'clean-acc', points: 2 }, { held, log: () => {} });
    expect(p.pruned).toBe(1);
    expect(p.threshold).toBeCloseTo(0.1, 6);
    expect(gamma[k0]).toBe(0);
    model.dispose();
  });
});
