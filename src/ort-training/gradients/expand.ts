/** Expand: the gradient sums dy over the axes the input was broadcast along. */
import { unbroadcast } from './elementwise.js';
import type { GradientContext } from './gradient-types.js';

export function expandGradient(ctx: GradientContext): (string | undefined)[] {
  const { node } = ctx;
  const x = node.inputs[0]!;
  return [unbroadcast(ctx.b, ctx.dy[0]!, ctx.shape(node.outputs[0]!), ctx.shape(x), ctx.batchDependent(x)), undefined];
}
