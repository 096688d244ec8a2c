/**
 * The scan's second signal: trigger reverse-engineering in feature space, after the deepest tap (the
 * feature-space masking of FeatureRE, Wang et al. NeurIPS 2022, reduced to a channel mask). A backdoor that
 * is not a small patch in pixels (a blended image, a sinusoid, a warp) is still carried by a few channels of
 * the late features; for each class t this finds the fewest channels that, set to a learned value, send the
 * clean images' features to t:
 *
 *   f' = (1 - m_c) f + m_c p_c  per channel c (over all positions),  m = tanh(a) / (2 + eps) + 0.5,
 *   loss = mean cross-entropy(tail(f'), t) + cost * |m|_1,  Adam (lr 0.1, betas 0.5 / 0.9),
 *
 * with Neural Cleanse's cost schedule and early stop. tail() is the network after the tap
 * (export/tail-model.ts), differentiated by the training engine with respect to its input. A class's score
 * is |m|_1; the anomaly index is the same as for the pixel masks.
 */
import type { TrainingEngine } from '../training/engine.js';
import { INPUT_GRADIENT } from '../training/engine.js';
import { Adam } from '../training/optimizers/adam.js';
import { nchwToNhwc } from '../verify/onnx-runtime.js';
import { countHits, runSearch, SquashedValues, type NeuralCleanseConfig, type SearchStep } from './neural-cleanse.js';

/** Feature maps of the scan images at the tap, N x C x H x W, with their labels. */
export interface FeatureImages {
  features: Float32Array;
  labels: Int32Array;
  n: number;
  c: number;
  h: number;
  w: number;
}

export interface FeatureTrigger {
  target: number;
  /** Per channel in [0, 1]. */
  mask: Float32Array;
  /** |m|_1 of the kept mask: the number of channels the trigger needs. */
  score: number;
  reached: boolean;
  epochs: number;
}

export async function reverseFeatureTrigger(
  tail: TrainingEngine, f: FeatureImages, target: number, classes: number, cfg: NeuralCleanseConfig,
): Promise<FeatureTrigger> {
  const { c, h, w } = f;
  const hw = h * w, size = c * hw;
  // The pattern starts at each channel's mean over the images plus two standard deviations: a strong but
  // typical activation.
  const pattern = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    let s = 0, s2 = 0;
    for (let i = 0; i < f.n; i++) for (let p = 0; p < hw; p++) {
      const v = f.features[i * size + k * hw + p]!;
      s += v;
      s2 += v * v;
    }
    const m = s / (f.n * hw);
    pattern[k] = m + 2 * Math.sqrt(Math.max(0, s2 / (f.n * hw) - m * m));
  }
  const mask = new SquashedValues(c);
  const adam = new Adam({ beta1: 0.5, beta2: 0.9, eps: 1e-8, weightDecay: 0 });
  const gMask = new Float32Array(c), gPattern = new Float32Array(c);
  const step: SearchStep = async (from, n, cost) => {
    const m = mask.value;
    const x = new Float32Array(n * size);
    for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) {
      const mk = m[k]!, pk = pattern[k]!, base = i * size + k * hw, src = (from + i) * size + k * hw;
      for (let q = 0; q < hw; q++) x[base + q] = (1 - mk) * f.features[src + q]! + mk * pk;
    }
    const r = await tail.gradients({ nchw: x, nhwc: nchwToNhwc(x, n, c, h, w), labels: new Int32Array(n).fill(target), n }, new Map());
    const g = r.grads.get(INPUT_GRADIENT)!;
    gMask.fill(cost);
    gPattern.fill(0);
    for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) {
      const base = i * size + k * hw, src = (from + i) * size + k * hw;
      let dm = 0, dp = 0;
      for (let q = 0; q < hw; q++) {
        dm += g[base + q]! * (pattern[k]! - f.features[src + q]!);
        dp += g[base + q]!;
      }
      gMask[k] += dm;
      gPattern[k] += dp * m[k]!;
    }
    const l1 = mask.sum();
    adam.update('mask', mask.raw, mask.toRaw(gMask), cfg.lr);
    adam.update('pattern', pattern, gPattern, cfg.lr);
    mask.refresh();
    return { hits: countHits(r.logits!, n, classes, target), l1 };
  };
  const run = await runSearch(cfg, f.n, step, () => mask.value.slice());
  const kept = run.best ?? run.last;
  return { target, mask: kept, score: kept.reduce((a, v) => a + v, 0), reached: run.best !== undefined, epochs: run.epochs };
}
