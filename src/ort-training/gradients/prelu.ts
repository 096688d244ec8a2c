/** PRelu, as PyTorch differentiates it: dx = dy above 0, slope * dy otherwise; dslope = sum of x * dy where x <= 0. */
import { unbroadcast } from './elementwise.js';
import type { GradientContext } from './gradient-types.js';

export function preluGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const [x, slope] = node.inputs as [string, string];
  const dy = ctx.dy[0]!;
  const above = b.one('Greater', [x, b.scalar(0)]);
  const dx = ctx.needs(0) ? b.one('Where', [above, dy, b.one('Mul', [dy, slope])]) : undefined;
  const dslope = ctx.needs(1)
    ? unbroadcast(b, b.one('Where', [above, b.scalar(0), b.one('Mul', [dy, x])]), ctx.shape(node.outputs[0]!), ctx.shape(slope), ctx.batchDependent(slope))
    : undefined;
  return [dx, dslope];
}
