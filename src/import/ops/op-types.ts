/** The contract between the graph interpreter and the per-op converters (one converter per ONNX op). */
import type * as tf from '../../tf.js';
import type { GraphNode } from '../graph.js';
import type { TensorValue } from '../tensor-data.js';

/**
 * A tensor flowing through the graph. Rank-4 activations are kept NHWC (what tfjs convolutions want);
 * `nhwc` says so, and converters that need ONNX's NCHW semantics ask for `nchw()` first.
 */
export interface Value {
  t: tf.Tensor;
  nhwc: boolean;
}

/** Batch statistics a training-mode BatchNormalization produced, to fold into its running statistics. */
export interface RunningStatUpdate {
  meanName: string;
  varName: string;
  batchMean: tf.Tensor1D;
  batchVarUnbiased: tf.Tensor1D;
  momentum: number; // ONNX convention: running = running * momentum + batch * (1 - momentum)
}

export interface OpContext {
  node: GraphNode;
  /** "<file>: node '<name>' (<op>)" for error messages. */
  where: string;
  training: boolean;
  /** The model's default-domain opset version. */
  opset: number;
  /** Input i, which must be present. */
  input(i: number): Value;
  /** Input i, or undefined when absent or given as ''. */
  optionalInput(i: number): Value | undefined;
  /** Input i as a value known without running the graph (an initializer or Constant), if it is one. */
  constant(i: number): TensorValue | undefined;
  /** Integer contents of input i (shapes, axes, pads), read from the constant or the computed tensor. */
  ints(i: number): number[] | undefined;
  /** The parameter tensor (a tfjs variable when trainable) that input i refers to, in its stored layout. */
  param(i: number): tf.Tensor | undefined;
  /** Records BatchNormalization batch statistics for the running-statistics update. */
  addRunningStatUpdate(u: RunningStatUpdate): void;
  /** Whether BatchNormalization nodes should use batch statistics (training) or running ones. */
  bnUsesBatchStats: boolean;
  /** Dropout in training: the mask drawn for this node ({0, 1 / (1 - ratio)}, ONNX's NCHW layout), else none. */
  dropoutMask?: tf.Tensor;
  /** The normalisation restored in front of this node's bias when PyTorch folded a BatchNorm into it. */
  restoredBatchNorm?: RestoredBatchNorm;
}

/**
 * A BatchNorm that PyTorch's exporter folded into a Conv, restored for training: the conv runs without
 * its bias and is followed by this normalisation (see import/restore-batchnorm.ts).
 */
export interface RestoredBatchNorm {
  gamma: tf.Variable;
  beta: tf.Variable;
  mean: tf.Variable;
  variance: tf.Variable;
  /** Names of the four as (synthetic) parameters. */
  gammaName: string;
  betaName: string;
  meanName: string;
  varName: string;
  eps: number;
  momentum: number;
}

export type OpConverter = (ctx: OpContext) => Value[];
