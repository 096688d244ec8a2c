/** Split: the input's gradient is the parts' gradients concatenated back (zeros for a part nothing reads). */
import { splitSizes } from '../../import/ops/split.js';
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function splitGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const xs = ctx.shape(x);
  const axis = (node.attrs.int('axis', 0) + xs.length) % xs.length;
  if (axis === 0 && ctx.batchDependent(x)) throw new UnsupportedForTraining(`${ctx.where}: Split along the batch axis`);
  const given = node.inputs[1] ? ctx.constantInts(node.inputs[1]) : undefined;
  if (node.inputs[1] && !given) throw new UnsupportedForTraining(`${ctx.where}: split sizes computed at run time`);
  splitSizes(node, xs[axis]!, given, ctx.where);
  const parts = node.outputs.map((o, i) => ctx.dy[i] ?? b.one('ConstantOfShape', [b.one('Shape', [o])]) /* float zeros */);
  return [b.one('Concat', parts, { axis }), ...node.inputs.slice(1).map(() => undefined)];
}
