/** A few plain optimisation steps on one engine, as the methods run them (ParameterStore + Sgd + plainStep), for the engine tests. */
import * as tf from '../../src/tf.js';
import type { TrainableModel } from '../../src/import/trainable-model.js';
import { createEngine } from '../../src/training/create-engine.js';
import type { Batch, EngineChoice } from '../../src/training/engine.js';
import { attentionDistillationTerm, teacherTapInput } from '../../src/training/loss/attention-distillation.js';
import { crossEntropyTerm } from '../../src/training/loss/cross-entropy.js';
import { Sgd, type SgdConfig } from '../../src/training/optimizers/sgd.js';
import { ParameterStore } from '../../src/training/parameter-store.js';
import { plainStep } from '../../src/training/steps.js';

export interface StepLosses {
  total: number;
  ce: number;
  at: number[];
}

/** The tap tensors of `model` on an NHWC batch, as NCHW arrays (what onnxruntime returns for a frozen teacher). */
export function tapsNchw(model: TrainableModel, nhwc: Float32Array, n: number): Float32Array[] {
  const [c, h, w] = model.inputShape;
  return tf.tidy(() => model.forward(tf.tensor4d(nhwc, [n, h, w, c]), { training: false, withTaps: true }).taps.map((t) => {
    const v = t.nhwc ? tf.transpose(t.t, [0, 3, 1, 2]) : t.t;
    return new Float32Array(v.dataSync());
  }));
}

export async function engineSteps(
  model: TrainableModel, engine: EngineChoice, batch: Batch, lrs: number[], sgd: SgdConfig,
  nad?: { betas: number[]; p: number; teacherTaps: Float32Array[] },
): Promise<{ name: string; losses: StepLosses[]; momentum: Map<string, Float32Array> }> {
  const store = new ParameterStore(model);
  const opt = new Sgd(sgd);
  const terms = [crossEntropyTerm(model.numClasses), ...(nad ? model.taps.map((t, k) => attentionDistillationTerm(k, t.name, t.shape, nad.betas[k]!, nad.p)) : [])];
  const e = await createEngine(model, store, { terms }, { choice: engine });
  const step = plainStep(e, store, opt);
  const extras = nad ? Object.fromEntries(nad.teacherTaps.map((t, k) => [teacherTapInput(k), t])) : undefined;
  const losses: StepLosses[] = [];
  try {
    for (const lr of lrs) {
      const r = await step({ ...batch, extras }, lr);
      losses.push({ total: r.total, ce: r.terms.ce!, at: model.taps.map((_, k) => r.terms[`at_${k}`]).filter((v): v is number => v !== undefined) });
    }
  } finally {
    await e.dispose();
  }
  store.writeTo(model);
  const momentum = new Map<string, Float32Array>();
  for (const name of store.trainableNames()) {
    const m = opt.momentum(name);
    if (m) momentum.set(name, m);
  }
  return { name: e.name, losses, momentum };
}
