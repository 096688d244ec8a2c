/**
 * TensorOps as ONNX nodes for the training graph: each op appends a node through the GraphBuilder, records
 * its output's shape (for a batch of one, as the rest of the generator does) and whether it depends on the
 * batch, and is handed to `emit` so that the reverse pass differentiates it with the gradient registry.
 */
import type { TensorOps } from '../training/loss/tensor-ops.js';
import type { GraphBuilder } from './graph-builder.js';
import type { NodeProto } from '../onnx/onnx-schema.js';

export class OnnxTensorOps implements TensorOps<string> {
  constructor(
    private readonly b: GraphBuilder,
    private readonly shapes: Map<string, number[]>,
    private readonly batchDep: Set<string>,
    private readonly emit: (node: NodeProto) => void,
  ) {}

  private op(type: string, inputs: string[], shape: number[], attrs: Parameters<GraphBuilder['node']>[2] = {}): string {
    const out = this.b.one(type, inputs, attrs);
    this.shapes.set(out, shape);
    if (inputs.some((i) => this.batchDep.has(i))) this.batchDep.add(out);
    this.emit(this.b.nodes[this.b.nodes.length - 1]!);
    return out;
  }

  private shape(a: string): number[] {
    const s = this.shapes.get(a);
    if (!s) throw new Error(`loss graph: shape of '${a}' is unknown`);
    return s;
  }

  private broadcast(a: string, b: string): number[] {
    const x = this.shape(a), y = this.shape(b);
    const r = Math.max(x.length, y.length);
    return Array.from({ length: r }, (_, i) => Math.max(x[i - r + x.length] ?? 1, y[i - r + y.length] ?? 1));
  }

  scalar(v: number): string {
    const name = this.b.scalar(v);
    this.shapes.set(name, []);
    return name;
  }

  /** Registers a tensor produced elsewhere (model tensor, fed input, parameter, constant). */
  known(name: string, shape: number[], batchDependent: boolean): string {
    this.shapes.set(name, shape);
    if (batchDependent) this.batchDep.add(name);
    return name;
  }

  add(a: string, b: string): string { return this.op('Add', [a, b], this.broadcast(a, b)); }
  sub(a: string, b: string): string { return this.op('Sub', [a, b], this.broadcast(a, b)); }
  mul(a: string, b: string): string { return this.op('Mul', [a, b], this.broadcast(a, b)); }
  div(a: string, b: string): string { return this.op('Div', [a, b], this.broadcast(a, b)); }
  neg(a: string): string { return this.op('Neg', [a], this.shape(a)); }
  sqrt(a: string): string { return this.op('Sqrt', [a], this.shape(a)); }
  exp(a: string): string { return this.op('Exp', [a], this.shape(a)); }
  abs(a: string): string { return this.op('Abs', [a], this.shape(a)); }
  log(a: string): string { return this.op('Log', [a], this.shape(a)); }
  // Training graphs are opset 17 or later: Clip takes its bounds as inputs ('' for none).
  clip(a: string, min?: number, max?: number): string {
    return this.op('Clip', [a, min !== undefined ? this.scalar(min) : '', ...(max !== undefined ? [this.scalar(max)] : [])], this.shape(a));
  }
  pow(a: string, p: number): string { return this.op('Pow', [a, this.scalar(p)], this.shape(a)); }

  private reduced(a: string, axes: number[], keep: boolean): { shape: number[]; axes: number[] } {
    const s = this.shape(a);
    const ax = axes.map((x) => (x + s.length) % s.length);
    return { axes: ax, shape: keep ? s.map((d, i) => (ax.includes(i) ? 1 : d)) : s.filter((_, i) => !ax.includes(i)) };
  }

  sum(a: string, axes: number[], keep: boolean): string {
    const r = this.reduced(a, axes, keep);
    return this.op('ReduceSum', [a, this.b.ints(r.axes)], r.shape, { keepdims: keep ? 1 : 0 });
  }

  mean(a: string, axes: number[], keep: boolean): string {
    const r = this.reduced(a, axes, keep);
    if (this.b.opset >= 18) return this.op('ReduceMean', [a, this.b.ints(r.axes)], r.shape, { keepdims: keep ? 1 : 0 });
    return this.op('ReduceMean', [a], r.shape, { axes: r.axes, keepdims: keep ? 1 : 0 });
  }

  batchMean(a: string): string {
    const s = this.shape(a);
    const summed = this.op('ReduceSum', [a, this.b.ints([0])], s.slice(1), { keepdims: 0 });
    // The batch size, from the run-time shape (Size and Shape carry no gradient).
    const per = s.slice(1).reduce((x, y) => x * y, 1);
    const count = this.b.countOf(a, per);
    this.shapes.set(count, []);
    return this.op('Div', [summed, count], s.slice(1));
  }

  reshape(a: string, shape: number[]): string {
    const batchOne = shape.map((d) => (d === -1 ? 1 : d));
    return this.op('Reshape', [a, this.b.ints(shape)], batchOne);
  }

  logSoftmax(a: string, axis: number): string {
    return this.op('LogSoftmax', [a], this.shape(a), { axis });
  }
}
