/**
 * A defence: one module behind one interface. It states the options it owns, resolves them to its
 * defaults, says what of them changes the result (the checkpoint fingerprint), and trains a copy of the
 * model as one or more phases on the shared engine. Loading, measuring, writing the weights into the
 * original graph, verifying and reporting belong to the pipeline (clean.ts), not to a defence.
 */
import type { LoadedModel } from '../import/load-model.js';
import type { TrainableModel } from '../import/trainable-model.js';
import type { EpochLoss } from '../training/epoch-loop.js';
import type { ParameterStore } from '../training/parameter-store.js';
import type { PhaseEnvironment } from '../training/phase.js';
import type { MethodName, MethodOptions } from './method-options.js';

export interface DefenceContext extends PhaseEnvironment {
  source: LoadedModel;
  /** --taps, or undefined for the detected residual-group taps. */
  tapNames?: string[];
  /** The taps in use (named or detected), C x H x W each. */
  taps: { name: string; shape: number[] }[];
  numClasses: number;
  /** Restores the BatchNorms PyTorch folded into convs of a fresh model (calibrated on the clean data); returns how many. */
  restore(m: TrainableModel): number;
}

/** A trained copy of the model: its store holds the trained values. */
export interface TrainedCopy {
  model: TrainableModel;
  store: ParameterStore;
  /** Losses per phase name. */
  losses: Record<string, EpochLoss[]>;
  /** Engine per phase name ('checkpoint' when a finished phase came from a checkpoint). */
  engines: Record<string, string>;
  restored: number;
}

/** A model the defence made on the way that the report measures (NAD's teacher). */
export interface Intermediate {
  label: string;
  method: string;
  /** The model's bytes, and with its taps exposed (for the attention figure). */
  bytes: Uint8Array;
  tapBytes: Uint8Array;
  taps: string[];
  path?: string;
}

export interface DefenceResult extends TrainedCopy {
  /** The method's own report parameters. */
  parameters: Record<string, unknown>;
  teacher?: Intermediate;
  /** A chain's models after each stage but the last, in order. */
  stages?: Intermediate[];
}

/** Where a trained copy goes: its phase name in losses and checkpoints, and its random stream's offset from --seed. */
export interface PhaseSlot {
  name: string;
  seedOffset: number;
  /** A check of the trained copy that may send its phase back to a restart (PhaseSpec.verify). */
  verify?: (model: TrainableModel, store: ParameterStore) => Promise<string | undefined>;
}

export interface Defence<R = unknown> {
  /** A method of METHODS, or a chain of them ('anp+ft-sam'). */
  readonly name: MethodName | string;
  readonly summary: string;
  /** Options this method reads besides COMMON_OPTIONS. */
  readonly options: readonly (keyof MethodOptions)[];
  /** The options with this method's defaults filled in; throws BadInputError for bad values. */
  resolve(o: MethodOptions): R;
  /** Report parameters (and checkpoint fingerprint) of resolved options. */
  describe(r: R): Record<string, unknown>;
  /** Checks against the model's taps (C, H, W each) before anything runs; throws BadInputError. */
  checkModel?(r: R, model: string, taps: { name: string; shape: number[] }[]): void;
  /** The method's name in the cleaned model's provenance (metadata_props). */
  readonly provenance: string;
  /** Trains a copy of the model as this method does. */
  train(ctx: DefenceContext, r: R, slot: PhaseSlot): Promise<TrainedCopy>;
  /** The whole method; by default train() in its own slot. */
  run?(ctx: DefenceContext, r: R): Promise<DefenceResult>;
  /** Bytes of training state per parameter value beyond the values themselves (optimiser, perturbation copies). */
  stateFactor(r: R): number;
  /** What the method needs that only the onnxruntime engine computes (checked against --engine tfjs before anything trains). */
  readonly onnxruntimeOnly?: string;
  /**
   * The method masks BatchNorm channels (ANP, RNP): the pipeline refuses a model with no BatchNorm, nor a
   * folded one to restore, before anything trains (the fine-tuning baseline included).
   */
  readonly masksBatchNorm?: boolean;
  /** Models the method runs frozen beside training (NAD's teacher), for the memory plan. */
  frozenModels?: number;
  /**
   * Graphs beside the training step that differentiate with respect to the input at the method's batch (SAU's
   * PGD, on the trained model and on its frozen copy), for the memory plan: each keeps a step's activations.
   */
  inputGradientGraphs?: number;
}
