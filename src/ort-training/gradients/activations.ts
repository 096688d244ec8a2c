/** Gradients of the pointwise activations besides Relu (as PyTorch defines them at the kinks). */
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function leakyReluGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const alpha = node.attrs.float('alpha', 0.01);
  const dy = ctx.dy[0]!;
  return [b.one('Where', [b.one('Greater', [node.inputs[0]!, b.scalar(0)]), dy, b.one('Mul', [dy, b.scalar(alpha)])])];
}

/** Clip (ReLU6 and friends): the gradient passes where min < x < max (PyTorch's hardtanh backward). */
export function clipGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  let lo: string | undefined, hi: string | undefined;
  if (ctx.batchDependent(node.inputs[1] ?? '') || ctx.batchDependent(node.inputs[2] ?? '')) throw new UnsupportedForTraining(`${ctx.where}: Clip bounds computed from the batch`);
  if (node.attrs.has('min') || node.attrs.has('max')) {
    lo = node.attrs.has('min') ? b.scalar(node.attrs.float('min', 0)) : undefined;
    hi = node.attrs.has('max') ? b.scalar(node.attrs.float('max', 0)) : undefined;
  } else {
    lo = node.inputs[1] || undefined;
    hi = node.inputs[2] || undefined;
  }
  let mask: string | undefined;
  if (lo) mask = b.one('Greater', [x, lo]);
  if (hi) {
    const below = b.one('Less', [x, hi]);
    mask = mask ? b.one('And', [mask, below]) : below;
  }
  const dy = ctx.dy[0]!;
  return [mask ? b.one('Where', [mask, dy, b.scalar(0)]) : dy];
}

export function sigmoidGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const y = node.outputs[0]!;
  return [b.one('Mul', [ctx.dy[0]!, b.one('Mul', [y, b.one('Sub', [b.scalar(1), y])])])];
}

/** Softmax over `axis` (opset 13 semantics): dx = y * (dy - sum(dy * y)). */
export function softmaxGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const y = node.outputs[0]!;
  const axis = node.attrs.int('axis', -1);
  const dy = ctx.dy[0]!;
  const s = b.reduceSum(b.one('Mul', [dy, y]), [axis], true);
  return [b.one('Mul', [y, b.one('Sub', [dy, s])])];
}

/** LogSoftmax: dx = dy - exp(y) * sum(dy). */
export function logSoftmaxGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const y = node.outputs[0]!;
  const axis = node.attrs.int('axis', -1);
  const dy = ctx.dy[0]!;
  return [b.one('Sub', [dy, b.one('Mul', [b.one('Exp', [y]), b.reduceSum(dy, [axis], true)])])];
}
