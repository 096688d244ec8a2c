/** Where(condition, X, Y): dy goes to X where the condition holds and to Y elsewhere, summed back over broadcast axes. */
import { unbroadcast } from './elementwise.js';
import type { GradientContext } from './gradient-types.js';

export function whereGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const cond = node.inputs[0]!;
  const out = ctx.shape(node.outputs[0]!);
  const zero = b.scalar(0);
  const part = (k: number, picked: string[]) =>
    ctx.needs(k) ? unbroadcast(b, b.one('Where', picked), out, ctx.shape(node.inputs[k]!), ctx.batchDependent(node.inputs[k]!)) : undefined;
  return [undefined, part(1, [cond, ctx.dy[0]!, zero]), part(2, [cond, zero, ctx.dy[0]!])];
}
