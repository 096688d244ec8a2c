/**
 * Slice (opset 1 attributes, or opset 10+ constant inputs starts / ends / axes / steps) on ONNX's NCHW view,
 * with ONNX's clamping: negative indices count from the end, ends past the dimension stop at it. Positive
 * steps only (negative ones reverse a tensor, which no classifier export here does).
 */
import * as tf from '../../tf.js';
import type { GraphNode } from '../graph.js';
import { intValues, type TensorValue } from '../tensor-data.js';
import { nchw, plain } from './layout.js';
import type { OpContext, Value } from './op-types.js';

export interface SliceRange {
  begin: number[];
  end: number[];
  step: number[];
}

/** Per axis of an input of shape `dims`: where the slice begins and ends (clamped) and its step. */
export function resolveSlice(node: GraphNode, dims: number[], constant: (i: number) => TensorValue | undefined, where: string): SliceRange {
  const fromInput = (i: number) => {
    if (!node.inputs[i]) return undefined;
    const c = constant(i);
    if (!c) throw new Error(`${where}: input ${i} must be a constant`);
    return intValues(c);
  };
  const starts = node.attrs.ints('starts', undefined) ?? fromInput(1) ?? [];
  const ends = node.attrs.ints('ends', undefined) ?? fromInput(2) ?? [];
  const axes = node.attrs.ints('axes', undefined) ?? fromInput(3) ?? starts.map((_, i) => i);
  const steps = fromInput(4) ?? starts.map(() => 1);
  const r: SliceRange = { begin: dims.map(() => 0), end: [...dims], step: dims.map(() => 1) };
  axes.forEach((a0, k) => {
    const a = a0 < 0 ? a0 + dims.length : a0;
    const d = dims[a]!;
    if (steps[k]! <= 0) throw new Error(`${where}: step ${steps[k]} (only positive steps are supported)`);
    const clamp = (v: number) => Math.min(d, Math.max(0, v < 0 ? v + d : v));
    r.begin[a] = clamp(starts[k]!);
    r.end[a] = Math.max(r.begin[a]!, clamp(ends[k]!));
    r.step[a] = steps[k]!;
  });
  return r;
}

/** An input's integer values: a constant, or (in the interpreter) the run-time value of a shape computation. */
function runtimeInts(ctx: OpContext, i: number): TensorValue | undefined {
  const c = ctx.constant(i);
  if (c) return c;
  const t = ctx.input(i).t;
  return { dtype: 'int32', dims: [...t.shape], data: Int32Array.from(t.dataSync(), (v) => Math.round(Number(v))) };
}

export function slice(ctx: OpContext): Value[] {
  const x = nchw(ctx.input(0));
  const r = resolveSlice(ctx.node, x.shape as number[], (i) => runtimeInts(ctx, i), ctx.where);
  // tf.slice has a gradient; tf.stridedSlice (needed for steps) has none in tfjs.
  if (r.step.every((v) => v === 1)) return [plain(tf.slice(x, r.begin, r.end.map((e, i) => e - r.begin[i]!)))];
  return [plain(tf.stridedSlice(x, r.begin, r.end, r.step))];
}
