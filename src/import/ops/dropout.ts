/**
 * Dropout: the identity at evaluation and export; in training (PyTorch's model.train()) it multiplies by a
 * mask of zeros (probability `ratio`) and 1 / (1 - ratio), drawn by the training loop from the run's seeded
 * stream so that both engines and a resumed run drop the same units.
 */
import * as tf from '../../tf.js';
import { BadInputError } from '../../errors.js';
import type { Graph, GraphNode } from '../graph.js';
import { floatValues, type TensorValue } from '../tensor-data.js';
import type { OpContext, Value } from './op-types.js';

/** A Dropout node that drops in training. */
export interface DropoutSite {
  node: string;
  ratio: number;
  /** The input's ONNX shape without the batch axis. */
  dims: number[];
}

/** The drop probability: the `ratio` attribute before opset 12, the second input from 12 (default 0.5). */
export function dropoutRatio(node: GraphNode, constant: (name: string) => TensorValue | undefined, where: string): number {
  const attr = node.attrs.float('ratio', NaN);
  if (!Number.isNaN(attr)) return attr;
  if (!node.inputs[1]) return 0.5;
  const c = constant(node.inputs[1]);
  if (!c) throw new BadInputError(`${where}: the dropout ratio must be a constant`);
  return floatValues(c)[0]!;
}

export function dropoutSites(graph: Graph, shapes: Map<string, number[]>, constant: (name: string) => TensorValue | undefined): DropoutSite[] {
  return graph.nodes.filter((n) => n.opType === 'Dropout').flatMap((n) => {
    const ratio = dropoutRatio(n, constant, `${graph.file}: node '${n.name}' (Dropout)`);
    const shape = shapes.get(n.inputs[0]!);
    if (!(ratio > 0) || !shape) return [];
    if (ratio >= 1) throw new BadInputError(`${graph.file}: node '${n.name}' (Dropout): ratio ${ratio} drops everything`);
    return [{ node: n.name, ratio, dims: shape.slice(1) }];
  });
}

export function dropout(ctx: OpContext): Value[] {
  const v = ctx.input(0);
  const m = ctx.dropoutMask;
  if (!m) return [v];
  const mask = v.nhwc && m.rank === 4 ? tf.transpose(m, [0, 2, 3, 1]) : m;
  return [{ t: tf.mul(v.t, mask), nhwc: v.nhwc }];
}
