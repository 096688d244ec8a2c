/**
 * The training flags of `clean`, shared by every defence; each defence reads the ones it owns and states
 * them, so a flag given to a method it does not apply to is refused (--rho with --method nad).
 */
import type { AttentionKind } from '../training/attention.js';

export const METHODS = ['nad', 'ft', 'ft-sam', 'fst', 'anp', 'sau', 'rnp'] as const;
export type MethodName = (typeof METHODS)[number];

/**
 * What `clean` runs without --method: the method with the best worst case over the attack fixtures of
 * bench/README.md's efficacy table (distance to ASR <= 2 % and an acc_all drop <= 2 points, then cost),
 * chosen from measurements, never per attack. ft: 17.5 points at its worst (Blended), against NAD's 18.6, at
 * a fifth of NAD's time.
 */
export const DEFAULT_METHOD: MethodName = 'ft';

export interface MethodOptions {
  /** The defence (default DEFAULT_METHOD). */
  method?: string;
  /** NAD: the method that makes the teacher (default ft). */
  teacherMethod?: string;
  /** NAD: a ready teacher in ONNX. */
  teacher?: string;
  teacherEpochs?: number;
  epochs?: number;
  betas?: number[];
  p?: number;
  attention?: AttentionKind;
  lr?: number;
  lrDropEpoch?: number;
  batch?: number;
  momentum?: number;
  weightDecay?: number;
  /** FT-SAM: the neighbourhood size rho. */
  rho?: number;
  /** FT-SAM: label smoothing. */
  labelSmoothing?: number;
  /** FST: weight of the inner-product term. */
  alpha?: number;
  /** Methods other than NAD: also run plain fine-tuning as the baseline (default true). */
  baseline?: boolean;
  /** ANP: noise bound, noise steps, weight of the clean loss, the masks' learning rate, mask updates. */
  anpEps?: number;
  anpSteps?: number;
  anpAlpha?: number;
  maskLr?: number;
  anpIterations?: number;
  /** RNP: unlearn until the training accuracy is at or below this fraction (default 0.2). */
  unlearnUntil?: number;
  /** ANP, RNP: prune channels whose mask is at or below this (default 0.2) ... */
  pruneThreshold?: number;
  /** ... or by clean-acc:<points> on a held-back 10 % of --data. */
  pruneBy?: string;
  /** SAU: L-inf bound of the shared adversarial perturbation in [0, 1] pixel units, and its PGD steps. */
  pgdEps?: number;
  pgdSteps?: number;
}

/** The command-line spelling of each option, for messages. */
export const FLAG: Record<keyof MethodOptions, string> = {
  method: '--method', teacherMethod: '--teacher-method', teacher: '--teacher', teacherEpochs: '--teacher-epochs', epochs: '--epochs',
  betas: '--betas', p: '--p', attention: '--attention', lr: '--lr', lrDropEpoch: '--lr-drop-epoch', batch: '--batch', momentum: '--momentum',
  weightDecay: '--weight-decay', rho: '--rho', labelSmoothing: '--label-smoothing', alpha: '--alpha', baseline: '--no-baseline',
  anpEps: '--anp-eps', anpSteps: '--anp-steps', anpAlpha: '--anp-alpha', maskLr: '--mask-lr', anpIterations: '--anp-iterations',
  unlearnUntil: '--unlearn-until', pruneThreshold: '--prune-threshold', pruneBy: '--prune-by', pgdEps: '--pgd-eps', pgdSteps: '--pgd-steps',
};

/** Options every method reads. */
export const COMMON_OPTIONS: readonly (keyof MethodOptions)[] = ['method', 'epochs', 'lr', 'batch', 'momentum', 'weightDecay'];
