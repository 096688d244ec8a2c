/** Gemm (alpha, beta, transA, transB, broadcast C) and MatMul. */
import * as tf from '../../tf.js';
import { nchw, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

/** A weight input: the trainable parameter when it is an initializer, else the computed value. */
function operand(ctx: OpContext, i: number): tf.Tensor {
  return ctx.param(i) ?? nchw(ctx.input(i));
}

export function gemm(ctx: OpContext): Value[] {
  const a = operand(ctx, 0), b = operand(ctx, 1);
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`${ctx.where}: A and B must be 2-D, got [${a.shape}] and [${b.shape}]`);
  const transA = ctx.node.attrs.int('transA', 0) === 1, transB = ctx.node.attrs.int('transB', 0) === 1;
  const k1 = transA ? a.shape[0] : a.shape[1], k2 = transB ? b.shape[1] : b.shape[0];
  if (k1 !== k2) throw new Error(`${ctx.where}: inner dimensions differ (${k1} vs ${k2})`);
  const alpha = ctx.node.attrs.float('alpha', 1), beta = ctx.node.attrs.float('beta', 1);
  let y = tf.matMul(a, b, transA, transB);
  if (alpha !== 1) y = tf.mul(y, alpha);
  if (ctx.node.inputs[2]) {
    const c = operand(ctx, 2);
    y = tf.add(y, beta === 1 ? c : tf.mul(c, beta));
  }
  return [plain(y)];
}

export function matMul(ctx: OpContext): Value[] {
  let a = operand(ctx, 0), b = operand(ctx, 1);
  if (a.rank < 1 || b.rank < 1) throw new Error(`${ctx.where}: MatMul of scalars`);
  const aVec = a.rank === 1, bVec = b.rank === 1;
  if (aVec) a = a.reshape([1, a.shape[0]!]);
  if (bVec) b = b.reshape([b.shape[0]!, 1]);
  if (a.shape[a.rank - 1] !== b.shape[b.rank - 2]) throw new Error(`${ctx.where}: inner dimensions differ ([${a.shape}] x [${b.shape}])`);
  let y: tf.Tensor;
  if (b.rank === 2 && a.rank > 2) {
    // A Linear layer on every row of a channels-last map: one 2-D product over the flattened rows.
    const rows = a.shape.slice(0, -1);
    y = tf.matMul(a.reshape([-1, a.shape[a.rank - 1]!]), b).reshape([...rows, b.shape[1]!]);
  } else {
    // tfjs's BatchMatMul gradient does not sum over broadcast batch axes; broadcasting first (whose
    // gradient does) keeps both operands' gradients the shape of the operands.
    const lead = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2), ctx.where);
    const full = (t: tf.Tensor) => (t.rank - 2 === lead.length && t.shape.slice(0, -2).every((d, i) => d === lead[i]) ? t : tf.broadcastTo(t, [...lead, ...t.shape.slice(-2)]));
    y = tf.matMul(full(a), full(b));
  }
  if (aVec) y = y.squeeze([y.rank - 2]);
  if (bVec) y = y.squeeze([y.rank - 1]);
  return [plain(y)];
}

/** NumPy broadcasting of two shapes. */
function broadcastShape(x: number[], y: number[], where: string): number[] {
  const n = Math.max(x.length, y.length);
  return Array.from({ length: n }, (_, i) => {
    const dx = x[i - n + x.length] ?? 1, dy = y[i - n + y.length] ?? 1;
    if (dx !== dy && dx !== 1 && dy !== 1) throw new Error(`${where}: batch axes [${x}] and [${y}] do not broadcast`);
    return Math.max(dx, dy);
  });
}
