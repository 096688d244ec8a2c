/**
 * One optimisation step of the student: cross-entropy plus, when teacher maps are given, the weighted
 * attention-distillation terms (the teacher is frozen: its maps are plain inputs, no gradient).
 * Train-mode BatchNormalization statistics are folded into the running statistics after the step.
 */
import * as tf from '../tf.js';
import type { TrainableModel } from '../import/trainable-model.js';
import type { RunningStatUpdate } from '../import/ops/op-types.js';
import { attentionLoss, attentionMap } from './attention.js';
import type { Sgd } from './sgd.js';

export interface StepLosses {
  total: number;
  ce: number;
  at: number[];
}

export interface DistillTarget {
  /** Normalised teacher attention maps per tap, [N, H*W]. */
  maps: tf.Tensor2D[];
  betas: number[];
  p: number;
}

export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const oneHot = tf.oneHot(labels, logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

export function trainStep(
  model: TrainableModel, sgd: Sgd, x: tf.Tensor4D, labels: tf.Tensor1D, lr: number, distill?: DistillTarget,
): StepLosses {
  const vars = model.trainableVariables();
  let updates: RunningStatUpdate[] = [];
  const parts: tf.Scalar[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const r = model.forward(x, { training: true, withTaps: !!distill });
    updates = r.statUpdates;
    const ce = crossEntropy(r.logits, labels);
    parts.push(tf.keep(ce.clone()));
    let total: tf.Scalar = ce;
    if (distill) {
      r.taps.forEach((tap, k) => {
        const s = attentionMap(tap.t, tap.nhwc ? 3 : 1, distill.p);
        const l = attentionLoss(s, distill.maps[k]!);
        parts.push(tf.keep(l.clone()));
        total = tf.add(total, tf.mul(l, distill.betas[k]!));
      });
    }
    return total;
  }, vars);
  sgd.step(vars, grads, lr);
  for (const g of Object.values(grads)) g.dispose();
  model.applyRunningStats(updates);
  const vals = parts.map((p) => p.dataSync()[0]!);
  parts.forEach((p) => p.dispose());
  const total = value.dataSync()[0]!;
  value.dispose();
  return { total, ce: vals[0]!, at: vals.slice(1) };
}
