/**
 * SAU against PyTorch (fixtures/make_sau_reference.py on bench/reference/sau_reference.py): two batches of the
 * shared PGD and the unlearning gradient on the unfused WRN-16-1 with real BatchNorm, an Adam step between
 * them; and the perturbation's bound in pixel space under a normalisation.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgdEngines, sauEngineSpecs, sauGradients, sau } from '../src/defences/sau.js';
import { applyDelta, sharedPgd, type PgdEngines } from '../src/defences/shared-pgd.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { createEngine } from '../src/training/create-engine.js';
import { type Batch, type GradientSpec, type TrainingEngine } from '../src/training/engine.js';
import { Adam } from '../src/training/optimizers/adam.js';
import { ParameterStore } from '../src/training/parameter-store.js';
import { nhwcToNchw } from '../src/verify/onnx-runtime.js';
import { fmnist, modelPath, readJson, REFERENCE, relL2 } from './helpers/fixtures.js';

interface Rec {
  pgd_eps: number; pgd_steps: number; adam_lr: number;
  steps: { images: [number, number]; pgd: { adv: number; share: number; shared: number }[]; ce: number; shared: number }[];
  tensors: Record<string, { offset: number; length: number }>;
}

const rec = readJson<Rec>(join(REFERENCE, 'sau_steps.json'));
const blob = new Float32Array(readFileSync(join(REFERENCE, 'sau_steps.bin')).buffer.slice(0));
const recorded = (k: string) => blob.subarray(rec.tensors[k]!.offset, rec.tensors[k]!.offset + rec.tensors[k]!.length);

const options = sau.resolve({ pgdEps: 0.2, pgdSteps: 5 });
let model: TrainableModel, reference: TrainableModel, store: ParameterStore;
let pgd: PgdEngines, unlearn: TrainingEngine;
const opened: TrainingEngine[] = [];

beforeAll(async () => {
  model = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
  reference = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
  store = new ParameterStore(model);
  const refStore = new ParameterStore(reference);
  const open = async (m: TrainableModel, s: ParameterStore, spec: GradientSpec) => {
    const e = await createEngine(m, s, spec, { choice: 'onnxruntime' });
    opened.push(e);
    return e;
  };
  const specs = sauEngineSpecs(10, options);
  pgd = await openPgdEngines(open, { model, store }, { model: reference, store: refStore }, specs);
  unlearn = await open(model, store, specs.unlearn);
});

afterAll(async () => {
  for (const e of opened) await e.dispose();
  model.dispose();
  reference.dispose();
});

const [C, H, W] = [1, 32, 32];
const PLANE = H * W;

function batchOf(start: number): Batch {
  const d = fmnist('train', start + 8);
  expect([d.c, d.h, d.w]).toEqual([C, H, W]);
  const x = d.x.subarray(start * PLANE, (start + 8) * PLANE);
  return { nhwc: x, nchw: nhwcToNchw(x, 8, H, W, C), labels: d.y.subarray(start, start + 8), n: 8 };
}

describe('SAU steps match PyTorch', () => {
  it('two batches: the shared perturbation, both losses and the unlearning gradient, with an Adam step between', async () => {
    const adam = new Adam();
    for (const [k, step] of rec.steps.entries()) {
      const { step: s, pgd: found } = await sauGradients(pgd, unlearn, batchOf(step.images[0]), [C, H, W], 10, options);
      // The perturbation: sign steps, so entries agree exactly except where a gradient is within rounding of 0.
      const want = recorded(`delta#${k + 1}`);
      let same = 0;
      for (let i = 0; i < want.length; i++) if (Math.abs(found.delta[i]! - want[i]!) < 1e-6) same++;
      expect(same / want.length, `batch ${k + 1}: share of equal perturbation entries`).toBeGreaterThan(0.995);
      expect(found.steps, `batch ${k + 1}: PGD steps before every image is shared`).toBe(step.pgd.length);
      expect(found.shared).toBe(step.pgd[step.pgd.length - 1]!.shared);
      expect(Math.abs(s.terms.ce! - step.ce) / step.ce).toBeLessThan(1e-3);
      expect(Math.abs(s.terms.shared! - step.shared) / step.shared).toBeLessThan(1e-3);
      let worst = 0;
      for (const name of store.trainableNames()) {
        const got = s.grads.get(name), ref = recorded(`grad#${k + 1}#${name}`);
        expect(got, name).toBeDefined();
        worst = Math.max(worst, relL2(got!, ref));
      }
      expect(worst, `batch ${k + 1}: worst relative L2 of a parameter's gradient`).toBeLessThan(1e-4);
      adam.step(store, s.grads, rec.adam_lr);
    }
  });
});

describe('shared PGD', () => {
  it('stays within the bound in [0, 1] pixel units under a normalisation, and the image moves by delta / std', async () => {
    const b = batchOf(16);
    const std = [0.25];
    const eps = 0.1;
    const r = await sharedPgd(pgd, { ...b, nchw: b.nchw.map((v) => (v - 0.5) / 0.25) }, [C, H, W], 10, { ...options.pgd, eps }, std);
    let max = 0, moved = 0;
    for (const v of r.delta) {
      max = Math.max(max, Math.abs(v));
      if (v !== 0) moved++;
    }
    expect(max).toBeLessThanOrEqual(eps + 1e-7);
    expect(moved).toBeGreaterThan(r.delta.length / 2);
    const x = applyDelta(b.nchw, r.delta, C, PLANE, std);
    for (let i = 0; i < x.length; i += 97) expect((x[i]! - b.nchw[i]!) * 0.25).toBeCloseTo(r.delta[i]!, 6);
  });
});
