/**
 * LayerNormalization over axes [axis, rank): with x^ = (x - mean) * inv and g = dy * scale,
 * dx = inv * (g - mean(g) - x^ * mean(g * x^)); dscale = sum of dy * x^ and dB = sum of dy over the leading axes.
 */
import { unbroadcast } from './elementwise.js';
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function layerNormalizationGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const [x, scale, bias] = node.inputs as [string, string, string | undefined];
  if (ctx.dy.slice(1).some((d) => d !== undefined)) throw new UnsupportedForTraining(`${ctx.where}: gradient through LayerNormalization's Mean or InvStdDev outputs`);
  const xs = ctx.shape(x), ys = ctx.shape(node.outputs[0]!);
  const rank = xs.length;
  const axis = (node.attrs.int('axis', -1) + rank) % rank;
  const eps = node.attrs.float('epsilon', 1e-5);
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const dy = ctx.dy[0]!;
  // Recomputed from x: the forward node's Mean/InvStdDev outputs are optional and usually absent.
  const centred = b.one('Sub', [x, b.reduceMean(x, axes, true)]);
  const inv = b.one('Reciprocal', [b.one('Sqrt', [b.one('Add', [b.reduceMean(b.one('Mul', [centred, centred]), axes, true), b.scalar(eps)])])]);
  const xhat = b.one('Mul', [centred, inv]);
  let dx: string | undefined;
  if (ctx.needs(0)) {
    const g = b.one('Mul', [dy, scale]);
    const inner = b.one('Sub', [b.one('Sub', [g, b.reduceMean(g, axes, true)]), b.one('Mul', [xhat, b.reduceMean(b.one('Mul', [g, xhat]), axes, true)])]);
    dx = b.one('Mul', [inv, inner]);
  }
  const dScale = ctx.needs(1) ? unbroadcast(b, b.one('Mul', [dy, xhat]), ys, ctx.shape(scale), ctx.batchDependent(scale)) : undefined;
  const dBias = bias && ctx.needs(2) ? unbroadcast(b, dy, ys, ctx.shape(bias), ctx.batchDependent(bias)) : undefined;
  return [dx, dScale, dBias];
}
