/**
 * Split (torch.chunk / torch.split): sizes from the `split` attribute (before opset 13), the second input
 * (13+), or equal parts (`num_outputs` from opset 18, else the number of outputs; the last part may be
 * smaller). Works on ONNX's NCHW view.
 */
import * as tf from '../../tf.js';
import type { GraphNode } from '../graph.js';
import { nchw, normAxis, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

/** The size of each part along the axis. */
export function splitSizes(node: GraphNode, dim: number, given: number[] | undefined, where: string): number[] {
  const sizes = node.attrs.ints('split', undefined) ?? given;
  if (sizes) {
    if (sizes.length !== node.outputs.length || sizes.some((s) => s < 0) || sizes.reduce((a, s) => a + s, 0) !== dim) {
      throw new Error(`${where}: split sizes [${sizes}] do not cut an axis of ${dim} into ${node.outputs.length} parts`);
    }
    return sizes;
  }
  const parts = node.attrs.int('num_outputs', node.outputs.length);
  const each = Math.ceil(dim / parts);
  return Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(each, dim - i * each)));
}

export function split(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const axis = normAxis(ctx.node.attrs.int('axis', 0), x.rank, ctx.where);
  const sizes = splitSizes(ctx.node, x.shape[axis]!, ctx.node.inputs[1] ? ctx.ints(1) : undefined, ctx.where);
  return tf.split(x, sizes, axis).map(plain);
}
