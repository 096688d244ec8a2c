/**
 * Max and Min of two inputs (with broadcasting): the gradient goes to the input that won, and is split in
 * half on ties, as torch.maximum / torch.minimum do.
 */
import { unbroadcast } from './elementwise.js';
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

function extreme(ctx: GradientContext, wins: 'Greater' | 'Less'): (string | undefined)[] {
  const { b, node } = ctx;
  if (node.inputs.length !== 2) throw new UnsupportedForTraining(`${ctx.where}: ${node.opType} of ${node.inputs.length} inputs`);
  const [x, y] = node.inputs as [string, string];
  const dy = ctx.dy[0]!, half = b.one('Mul', [dy, b.scalar(0.5)]), zero = b.scalar(0);
  const tie = b.one('Equal', [x, y]);
  const share = (first: string, second: string) => b.one('Where', [b.one(wins, [first, second]), dy, b.one('Where', [tie, half, zero])]);
  const out = ctx.shape(node.outputs[0]!);
  const to = (g: string, name: string) => unbroadcast(b, g, out, ctx.shape(name), ctx.batchDependent(name));
  return [ctx.needs(0) ? to(share(x, y), x) : undefined, ctx.needs(1) ? to(share(y, x), y) : undefined];
}

export const maxGradient = (ctx: GradientContext) => extreme(ctx, 'Greater');
export const minGradient = (ctx: GradientContext) => extreme(ctx, 'Less');
