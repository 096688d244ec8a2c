/**
 * SAU's shared adversarial examples (Wei et al., NeurIPS 2023; Shared_PGD in BackdoorBench defense/sau.py):
 * an L-inf perturbation d in [0, 1] pixel space, per image, that makes the defended model f and the frozen
 * original model g both misclassify the image, and to the same label. It starts at +eps everywhere and
 * takes `steps` sign steps of `stepSize` down the gradient of
 *   beta1 * loss_adv + beta2 * loss_share,
 *   loss_adv   = -(sum over images f still gets right of CE(f) + the same for g) / (2 N),
 *   loss_share = sum over images not yet shared of JS(softmax f, softmax g) / N,
 * clipped to [-eps, eps] after each step (the image itself is not clipped to [0, 1], as the authors' code),
 * and stops early once every image is shared. "Right" means the model's label on the clean image.
 * Both models run in eval mode. The selections come from a forward pass at each step; the gradient with
 * respect to the image comes from each model's engine, with the other model's softmax as a fixed input.
 */
import { INPUT_GRADIENT, type Batch, type TrainingEngine } from '../training/engine.js';
import { jsDivergenceTerm, PROBABILITY_FLOOR } from '../training/loss/js-divergence.js';
import type { LossTerm } from '../training/loss/loss-term.js';
import { targetCrossEntropyTerm } from '../training/loss/target-cross-entropy.js';
import { argmaxRows } from '../verify/predictions.js';

export interface SharedPgdConfig {
  /** L-inf bound in [0, 1] pixel space. */
  eps: number;
  steps: number;
  stepSize: number;
  beta1: number;
  beta2: number;
}

export const ADV_TARGETS = 'sau#adv_targets';
export const OTHER_PROBS = 'sau#other_probs';
export const SHARE_WEIGHTS = 'sau#share_weights';

/** The loss terms of one model's input-gradient pass: its half of loss_adv and the JS term against the other model. */
export function sharedPgdTerms(classes: number, cfg: SharedPgdConfig): LossTerm[] {
  return [targetCrossEntropyTerm('adv', ADV_TARGETS, classes, -cfg.beta1 / 2), jsDivergenceTerm('share', OTHER_PROBS, SHARE_WEIGHTS, classes, cfg.beta2)];
}

/** The four passes the search needs: each model's forward (logits) and its input gradient of sharedPgdTerms. */
export interface PgdEngines {
  model: TrainingEngine;
  modelInput: TrainingEngine;
  reference: TrainingEngine;
  referenceInput: TrainingEngine;
}

/** A forward-only engine's logits for the batch's labels and sizes at other images (NCHW). */
export async function logitsAt(engine: TrainingEngine, batch: Batch, nchw: Float32Array): Promise<Float32Array> {
  return (await engine.gradients({ ...batch, nchw, nhwc: new Float32Array(0) }, new Map())).logits!;
}

/** Row-wise softmax as float32, clamped below at the JS term's floor. */
export function softmaxRows(logits: Float32Array, n: number, k: number, floor = PROBABILITY_FLOOR): Float32Array {
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity, sum = 0;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[i * k + j]!);
    for (let j = 0; j < k; j++) sum += Math.exp(logits[i * k + j]! - max);
    for (let j = 0; j < k; j++) out[i * k + j] = Math.max(floor, Math.exp(logits[i * k + j]! - max) / sum);
  }
  return out;
}

export interface SharedPgdResult {
  /** N x C x H x W in pixel units, within [-eps, eps]. */
  delta: Float32Array;
  /** The original model's logits on the clean images. */
  referenceClean: Float32Array;
  /** Steps taken (fewer than cfg.steps after an early stop). */
  steps: number;
  /** Images shared at the last step's forward pass. */
  shared: number;
}

/** `batch`: normalised images (NCHW) with their labels; `dims` C, H, W; `std` the per-channel normalisation. */
export async function sharedPgd(e: PgdEngines, batch: Batch, dims: [number, number, number], classes: number, cfg: SharedPgdConfig, std?: number[]): Promise<SharedPgdResult> {
  const { n } = batch;
  const k = classes;
  const none = new Map<string, Float32Array>();
  const cleanModel = argmaxRows(await logitsAt(e.model, batch, batch.nchw), n, k);
  const referenceClean = await logitsAt(e.reference, batch, batch.nchw);
  const cleanReference = argmaxRows(referenceClean, n, k);
  // The authors' 'max' start, already within the bound.
  const delta = new Float32Array(batch.nchw.length).fill(cfg.eps);
  const plane = batch.nchw.length / (n * dims[0]);
  let steps = 0, shared = 0;
  for (let s = 0; s < cfg.steps; s++) {
    const x = applyDelta(batch.nchw, delta, dims[0], plane, std);
    const fl = await logitsAt(e.model, batch, x), gl = await logitsAt(e.reference, batch, x);
    const fp = argmaxRows(fl, n, k), gp = argmaxRows(gl, n, k);
    const advF = new Float32Array(n * k), advG = new Float32Array(n * k), share = new Float32Array(n);
    shared = 0;
    for (let i = 0; i < n; i++) {
      const fFooled = fp[i] !== cleanModel[i], gFooled = gp[i] !== cleanReference[i];
      if (!fFooled) advF[i * k + batch.labels[i]!] = 1;
      if (!gFooled) advG[i * k + batch.labels[i]!] = 1;
      const isShared = fFooled && gFooled && fp[i] === gp[i];
      if (isShared) shared++;
      share[i] = isShared ? 0 : 1;
    }
    const xb: Batch = { ...batch, nchw: x, nhwc: new Float32Array(0) };
    const gf = await e.modelInput.gradients({ ...xb, extras: { [ADV_TARGETS]: advF, [OTHER_PROBS]: softmaxRows(gl, n, k), [SHARE_WEIGHTS]: share } }, none);
    const gg = await e.referenceInput.gradients({ ...xb, extras: { [ADV_TARGETS]: advG, [OTHER_PROBS]: softmaxRows(fl, n, k), [SHARE_WEIGHTS]: share } }, none);
    const a = gf.grads.get(INPUT_GRADIENT)!, b = gg.grads.get(INPUT_GRADIENT)!;
    // The gradient with respect to the pixel-space perturbation is this one divided by the channel's std: the same sign.
    for (let i = 0; i < delta.length; i++) delta[i] = delta[i]! - cfg.stepSize * Math.sign(a[i]! + b[i]!);
    clampInPlace(delta, cfg.eps);
    steps++;
    if (shared === n) break;
  }
  return { delta, referenceClean, steps, shared };
}

function clampInPlace(d: Float32Array, eps: number): void {
  for (let i = 0; i < d.length; i++) d[i] = Math.min(eps, Math.max(-eps, d[i]!));
}

/** x + delta / std per channel, NCHW; `plane` = H * W. */
export function applyDelta(nchw: Float32Array, delta: Float32Array, c: number, plane: number, std?: number[]): Float32Array {
  const out = new Float32Array(nchw.length);
  for (let i = 0; i < nchw.length; i++) out[i] = nchw[i]! + delta[i]! / (std?.[Math.floor(i / plane) % c] ?? 1);
  return out;
}
