/**
 * A loss is a weighted sum of terms. A term reads the model's logits, named model tensors (taps), per-batch
 * inputs (labels, a frozen model's outputs), parameters and constants, and returns a scalar. Engines build
 * every term from tensor-ops.ts, so gradients come from the engines' own differentiation.
 */
import type { TensorOps } from './tensor-ops.js';

/** A per-batch input of a term: its name and shape with -1 for the batch axis. */
export interface TermInput {
  name: string;
  dims: number[];
}

export interface TermContext<T> {
  ops: TensorOps<T>;
  logits: T;
  /** A tensor of the model (a tap) and the axis its channels are on (1 for NCHW, 3 for NHWC). */
  tensor(name: string): { t: T; channelAxis: number };
  /** A per-batch input declared in `inputs`. */
  input(name: string): T;
  /** A trainable parameter by initializer name, in ONNX layout (only non-conv weights). */
  param(name: string): T;
  /** A constant tensor in ONNX layout. */
  constant(name: string, values: Float32Array, dims: number[]): T;
}

export interface LossTerm {
  /** Name in the step's losses (e.g. 'ce', 'at_0'). */
  readonly name: string;
  readonly weight: number;
  /** Per-batch inputs, fed from the batch (see feed) or from Batch.extras. */
  readonly inputs: TermInput[];
  /** Model tensors the term reads (the engine exposes them). */
  readonly tensors: string[];
  /** Parameters the term reads directly. */
  readonly params: string[];
  /** Inputs the term derives from the batch itself (e.g. label targets). */
  feed?(labels: Int32Array, n: number): Record<string, Float32Array>;
  build<T>(c: TermContext<T>): T;
}
