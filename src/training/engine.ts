/**
 * The training-engine contract. An engine computes one forward + backward pass of a loss made of terms
 * (loss/) at given parameter values and returns the loss, each term, the gradients and the batch statistics;
 * it changes nothing. Optimisers (optimizers/), running-statistics updates and weight perturbations (SAM)
 * act on the ParameterStore outside it, so every method shares one engine.
 */
import { BadInputError } from '../errors.js';
import type { LossTerm } from './loss/loss-term.js';

export const ENGINES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type EngineChoice = (typeof ENGINES)[number];

export interface Batch {
  /** Augmented, normalised images, NHWC and the same in NCHW. */
  nhwc: Float32Array;
  nchw: Float32Array;
  labels: Int32Array;
  n: number;
  /** Per-batch term inputs that do not come from the labels (e.g. a frozen teacher's taps, NCHW). */
  extras?: Record<string, Float32Array>;
  /** Dropout masks by node name, NCHW, when the model drops in training (training/dropout-masks.ts). */
  dropout?: Record<string, Float32Array>;
}

/** What one engine instance computes (fixed when it is created). */
export interface GradientSpec {
  terms: LossTerm[];
  /** Gradients with respect to the trainable parameters (default true). */
  params?: boolean;
  /** Also with respect to the image input (returned NCHW under INPUT_GRADIENT). */
  input?: boolean;
  /** BatchNorm with batch statistics ('train', default) or running statistics ('eval'). */
  batchNorm?: 'train' | 'eval';
  /** Per-channel masks and multiplicative noise on every BatchNorm, with gradients (see TrainingEngine.masks). */
  masks?: boolean;
  /** Also return the logits of the pass (StepResult.logits), e.g. to count a batch's predictions without a second forward pass. */
  logits?: boolean;
  /**
   * The parameters keep the store's values of the engine's creation for its whole life (with params: false;
   * gradients() then refuses parameter values). The onnxruntime engine bakes them into its graph as
   * initializers, which it pre-packs and fuses with the BatchNorms: the scan's input-gradient pass on the
   * quick-start WRN-16-1 at batch 32 runs in a fraction of the time (bench/README.md).
   */
  constantParams?: boolean;
}

/** With GradientSpec.constantParams, a parameter's value in gradients()' values is a caller's mistake. */
export function refuseParameterValues(spec: GradientSpec, params: { has(name: string): boolean }, values: ReadonlyMap<string, Float32Array>): void {
  if (!spec.constantParams) return;
  for (const name of values.keys()) if (params.has(name)) throw new Error(`engine with constant parameters: '${name}' cannot take a value`);
}

/** PyTorch's model.train() turns on batch statistics and Dropout together; model.eval() turns off both. */
export function trainsDropout(spec: GradientSpec): boolean {
  return spec.batchNorm !== 'eval';
}

/** One BatchNorm's mask and noise tensors: fed through gradients()' values by these names (default mask 1, noise 0). */
export interface BatchNormMask {
  node: string;
  channels: number;
  mask: string;
  noiseW: string;
  noiseB: string;
}

/** Key of the input gradient in StepResult.grads. */
export const INPUT_GRADIENT = '#input';

/** A batch's statistics for one BatchNorm, for the running-statistics update (ONNX momentum convention). */
export interface BatchStat {
  meanParam: string;
  varParam: string;
  momentum: number;
  mean: Float32Array;
  varUnbiased: Float32Array;
}

export interface StepResult {
  total: number;
  /** Each term's unweighted value, by term name. */
  terms: Record<string, number>;
  /** Gradients in ONNX layout by parameter name (and INPUT_GRADIENT). */
  grads: Map<string, Float32Array>;
  /** Empty in 'eval' BatchNorm mode. */
  stats: BatchStat[];
  /** With GradientSpec.logits: N x classes. */
  logits?: Float32Array;
}

export interface TrainingEngine {
  readonly name: Exclude<EngineChoice, 'auto'>;
  /** With GradientSpec.masks: the mask and noise tensors per BatchNorm (their gradients come back by these names). */
  readonly masks: BatchNormMask[];
  /** Forward + backward at `values` (ONNX layout by parameter name, and mask/noise values by name; missing ones are the store's, or 1 / 0). */
  gradients(batch: Batch, values: ReadonlyMap<string, Float32Array>): Promise<StepResult>;
  dispose(): Promise<void>;
}

export function checkEngineChoice(choice: string): EngineChoice {
  if (!(ENGINES as readonly string[]).includes(choice)) throw new BadInputError(`--engine: unknown engine '${choice}' (choose from ${ENGINES.join(', ')})`);
  return choice as EngineChoice;
}

/** An engine that cannot compute what a method asks (callers fall back to the other engine, or refuse). */
export class EngineCannot extends Error {}
