/**
 * Emits ONNX nodes for the generated training graph: unique tensor names, small constants, and the
 * reductions whose form changed between opsets (ReduceSum takes axes as an input from opset 13,
 * ReduceMean from opset 18).
 */
import { onnx, type AttributeProto, type NodeProto, type TensorProto } from '../onnx/onnx-schema.js';
import { onnxDataType, type TensorValue } from '../import/tensor-data.js';

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

/** Node attributes as AttributeProtos. */
export function attributeProtos(attrs: Record<string, AttrValue>): AttributeProto[] {
  const A = onnx.AttributeProto.AttributeType;
  return Object.entries(attrs).map(([name, v]) => {
    if (typeof v === 'number') return { name, type: A.INT, i: v };
    if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
    if ('floats' in v) return { name, type: A.FLOATS, floats: v.floats };
    return { name, type: A.FLOAT, f: v.float };
  });
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;
  private readonly constCache = new Map<string, string>();
  /** Values of the int64 constants made by ints(), for gradient builders that read axes. */
  readonly intConstants = new Map<string, number[]>();
  /** MLAS's NCHWc channel block for the convolutions (nchwc-conv.ts); 0 for plain Conv nodes. */
  nchwcBlock = 0;
  /** Set when a node of the com.microsoft.nchwc domain was emitted (the model then imports it). */
  usesNchwc = false;
  /** Each tensor's blocked copy, once made (nchwc-conv.ts). */
  readonly nchwcInputs = new Map<string, string>();
  /** Each weight's filter in MLAS's blocks, once made (nchwc-conv.ts). */
  readonly nchwcFilters = new Map<string, string>();

  constructor(readonly opset: number) {}

  fresh(hint: string): string {
    return `nad#${hint}#${this.counter++}`;
  }

  /** Adds a node; returns its output names (fresh unless given). */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs: number | string[] = 1): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(op)) : outputs;
    this.nodes.push({ name: this.fresh(`${op}_node`), opType: op, input: inputs, output: outs, attribute: attributeProtos(attrs) });
    return outs;
  }

  one(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(op, inputs, attrs, 1)[0]!;
  }

  /** A float32 constant (cached by value). */
  floats(values: number[], dims: number[] = [values.length]): string {
    const key = `f:${dims.join(',')}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('const');
      this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(Float32Array.from(values).buffer) });
      this.constCache.set(key, name);
    }
    return name;
  }

  scalar(v: number): string {
    return this.floats([v], []);
  }

  /** An int64 constant (cached by value). */
  ints(values: number[], dims: number[] = [values.length]): string {
    const key = `i:${dims.join(',')}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('ints');
      this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
      this.constCache.set(key, name);
      this.intConstants.set(name, values);
    }
    return name;
  }

  /** Copies an initializer of the imported model. */
  initializer(name: string, v: TensorValue): void {
    const d = v.data;
    this.initializers.push({ name, dims: v.dims, dataType: onnxDataType(v.dtype), rawData: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) });
  }

  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    return this.one('ReduceSum', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    if (this.opset >= 18) return this.one('ReduceMean', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.one('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  /** The number of elements of x divided by `per`, as a float scalar (e.g. the batch size). */
  countOf(x: string, per: number): string {
    const size = this.one('Cast', [this.one('Size', [x])], { to: onnx.TensorProto.DataType.FLOAT });
    return per === 1 ? size : this.one('Div', [size, this.scalar(per)]);
  }
}
