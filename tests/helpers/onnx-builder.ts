/** Builds small ONNX models in memory (for per-op parity tests against onnxruntime). */
import { onnx } from '../../src/onnx/onnx-schema.js';

export interface InitSpec {
  name: string;
  dims: number[];
  float?: number[];
  int64?: number[];
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, number | number[] | string | { floats: number[] } | { float: number }>;
}

export function buildModel(spec: {
  inputs: { name: string; dims: number[] }[];
  outputs: string[];
  nodes: NodeSpec[];
  inits?: InitSpec[];
  opset?: number;
}): Uint8Array {
  const vi = (name: string, dims?: number[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined } },
    });
  const attr = (name: string, v: NonNullable<NodeSpec['attrs']>[string]) => {
    const A = onnx.AttributeProto.AttributeType;
    if (typeof v === 'number') return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
    if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
    if ('floats' in v) return { name, type: A.FLOATS, floats: v.floats };
    return { name, type: A.FLOAT, f: v.float };
  };
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'nad-onnx-tests',
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }],
    graph: {
      name: 'g',
      node: spec.nodes.map((n, i) => ({
        name: `n${i}`, opType: n.op, input: n.inputs, output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attr(k, v)),
      })),
      input: spec.inputs.map((i) => vi(i.name, i.dims)),
      output: spec.outputs.map((o) => vi(o)),
      initializer: (spec.inits ?? []).map((t) =>
        t.int64
          ? { name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: t.int64 }
          : { name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(Float32Array.from(t.float!).buffer) },
      ),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Deterministic pseudo-random values in [-1, 1) (mulberry32). */
export function randoms(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
