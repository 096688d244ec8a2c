/**
 * The training flags of `clean`, shared by every defence; each defence reads the ones it owns and states
 * them, so a flag given to a method it does not apply to is refused (--rho with --method nad).
 */
import type { AttentionKind } from '../training/attention.js';

export const METHODS = ['nad', 'ft', 'ft-sam', 'fst'] as const;
export type MethodName = (typeof METHODS)[number];

export interface MethodOptions {
  /** The defence (default nad). */
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
}

/** The command-line spelling of each option, for messages. */
export const FLAG: Record<keyof MethodOptions, string> = {
  method: '--method', teacherMethod: '--teacher-method', teacher: '--teacher', teacherEpochs: '--teacher-epochs', epochs: '--epochs',
  betas: '--betas', p: '--p', attention: '--attention', lr: '--lr', lrDropEpoch: '--lr-drop-epoch', batch: '--batch', momentum: '--momentum',
  weightDecay: '--weight-decay', rho: '--rho', labelSmoothing: '--label-smoothing', alpha: '--alpha', baseline: '--no-baseline',
};

/** Options every method reads. */
export const COMMON_OPTIONS: readonly (keyof MethodOptions)[] = ['method', 'epochs', 'lr', 'batch', 'momentum', 'weightDecay'];
