/** The contract between the training-graph generator and the per-op gradient builders. */
import type { GraphNode } from '../../import/graph.js';
import type { GraphBuilder } from '../graph-builder.js';

export interface GradientContext {
  b: GraphBuilder;
  node: GraphNode;
  /** "<file>: node '<name>' (<op>)" for error messages. */
  where: string;
  /** Incoming gradient of each output (undefined: none flows back through it). */
  dy: (string | undefined)[];
  /** Whether input i needs a gradient (it depends on a trainable parameter). */
  needs(i: number): boolean;
  /** ONNX shape of a tensor for a batch of one (the batch axis is dynamic). */
  shape(name: string): number[];
  /** Whether a tensor depends on the image batch (false for parameters and constants). */
  batchDependent(name: string): boolean;
  /** Integer values of a constant input (initializer or Constant output), or of a tensor computed from shapes that the batch size cannot change. */
  constantInts(name: string | undefined): number[] | undefined;
}

/** Returns the gradient of each input (undefined where none is needed). */
export type GradientBuilder = (ctx: GradientContext) => (string | undefined)[];

/** Unsupported node for the onnxruntime engine: callers fall back to the tfjs engine. */
export class UnsupportedForTraining extends Error {}

export function ints(node: GraphNode, name: string, dflt: number[]): number[] {
  return node.attrs.ints(name, dflt) ?? dflt;
}
