/**
 * Integer tensors that the batch size cannot change. Exports compute slice bounds and reshape targets at
 * run time from Shape (ShuffleNet's channel split: Shape -> Gather(1) -> Div(2) -> Slice). Knowing that such
 * a value depends only on channel and spatial sizes lets a builder treat it as the constant it is.
 *
 * Each element carries a flag "depends on the batch". Shape marks the dimensions whose size differs between
 * two forward passes at different batch sizes; the flags then follow the shape arithmetic element by element.
 * An op outside the shape arithmetic below makes its output unknown, never wrongly constant.
 */
import type { Graph } from './graph.js';
import { intValues, type TensorValue } from './tensor-data.js';
import { DataType } from '../onnx/onnx-schema.js';

interface IntTensor {
  values: number[];
  dims: number[];
  /** Per element: whether the batch size changes it. */
  dependent: boolean[];
  /** Cast to a float type: Div divides exactly and a Cast back truncates. */
  float?: boolean;
}

const ARITHMETIC: Readonly<Record<string, (a: number, b: number) => number>> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  // Integer Div truncates toward zero in ONNX.
  Div: (a, b) => Math.trunc(a / b),
  Mod: (a, b) => a - b * Math.floor(a / b),
};

/**
 * shapesA / shapesB: ONNX shapes of every computed tensor from two passes at different batch sizes.
 * Returns the values of every integer tensor computed from shapes and constants alone in which no element
 * depends on the batch.
 */
export function batchFreeInts(graph: Graph, constantOf: (name: string) => TensorValue | undefined, shapesA: Map<string, number[]>, shapesB: Map<string, number[]>): Map<string, number[]> {
  const known = new Map<string, IntTensor>();
  const get = (name: string | undefined): IntTensor | undefined => {
    if (!name) return undefined;
    const k = known.get(name);
    if (k) return k;
    const c = constantOf(name);
    if (!c || c.dtype === 'bool' || c.dtype === 'float16') return undefined;
    const float = c.dtype === 'float32' || c.dtype === 'float64';
    // Float constants take part only as scalars or short vectors of shape arithmetic.
    if (float && c.data.length > 8) return undefined;
    const values = float ? Array.from(c.data as Float32Array, Number) : intValues(c);
    return { values, dims: c.dims, dependent: values.map(() => false), float };
  };
  const vector = (values: number[], dependent: boolean[]): IntTensor => ({ values, dims: [values.length], dependent });

  for (const n of graph.nodes) {
    const out = n.outputs[0];
    if (!out) continue;
    const a = get(n.inputs[0]);
    let r: IntTensor | undefined;
    switch (n.opType) {
      case 'Shape': {
        const sa = shapesA.get(n.inputs[0]!), sb = shapesB.get(n.inputs[0]!);
        if (!sa || !sb || sa.length !== sb.length) break;
        const rank = sa.length;
        const norm = (v: number) => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
        const start = norm(n.attrs.int('start', 0)), end = norm(n.attrs.int('end', rank));
        r = vector(sa.slice(start, end), sa.slice(start, end).map((d, i) => d !== sb[start + i]));
        break;
      }
      case 'Identity': case 'Unsqueeze': case 'Squeeze':
        if (a) r = { ...a, dims: shapesA.get(out) ?? a.dims };
        break;
      case 'Cast': {
        if (!a) break;
        const to = n.attrs.int('to', DataType.FLOAT);
        const float = to === DataType.FLOAT || to === DataType.DOUBLE || to === DataType.FLOAT16;
        r = { ...a, values: !float && a.float ? a.values.map(Math.trunc) : a.values, float };
        break;
      }
      case 'Floor': case 'Ceil':
        if (a) r = { ...a, values: a.values.map(n.opType === 'Floor' ? Math.floor : Math.ceil) };
        break;
      case 'Gather': {
        const idx = get(n.inputs[1]);
        if (!a || !idx || a.dims.length !== 1 || idx.dependent.some(Boolean) || n.attrs.int('axis', 0) !== 0) break;
        const at = (i: number) => (i < 0 ? i + a.values.length : i);
        if (idx.values.some((i) => at(i) < 0 || at(i) >= a.values.length)) break;
        r = { values: idx.values.map((i) => a.values[at(i)]!), dims: idx.dims, dependent: idx.values.map((i) => a.dependent[at(i)]!) };
        break;
      }
      case 'Concat': {
        const parts = n.inputs.map(get);
        if (parts.some((p) => !p || p.dims.length > 1)) break;
        r = vector(parts.flatMap((p) => p!.values), parts.flatMap((p) => p!.dependent));
        break;
      }
      case 'Slice': {
        const [starts, ends, axes, steps] = [1, 2, 3, 4].map((i) => get(n.inputs[i]));
        const bounds = [starts, ends, axes, steps].filter((t): t is IntTensor => !!t);
        if (!a || a.dims.length !== 1 || !starts || !ends || bounds.some((t) => t.dependent.some(Boolean))) break;
        if ((axes && axes.values.some((x) => x !== 0 && x !== -1)) || (steps && steps.values[0] !== 1)) break;
        const len = a.values.length;
        const clamp = (v: number) => Math.min(len, Math.max(0, v < 0 ? v + len : v));
        const s = clamp(starts.values[0]!), e = Math.max(s, clamp(ends.values[0]!));
        r = vector(a.values.slice(s, e), a.dependent.slice(s, e));
        break;
      }
      default: {
        const f = ARITHMETIC[n.opType];
        const b = get(n.inputs[1]);
        if (!f || !a || !b) break;
        const size = Math.max(a.values.length, b.values.length);
        // Shape arithmetic broadcasts a scalar (or a one-element vector) against a vector.
        if ((a.values.length !== size && a.values.length !== 1) || (b.values.length !== size && b.values.length !== 1)) break;
        const pick = (t: IntTensor, i: number) => (t.values.length === 1 ? 0 : i);
        if (b.values.some((v, i) => (n.opType === 'Div' || n.opType === 'Mod') && v === 0 && !b.dependent[i])) break;
        const float = !!(a.float || b.float);
        const op = float && n.opType === 'Div' ? (x: number, y: number) => x / y : f;
        const values = Array.from({ length: size }, (_, i) => op(a.values[pick(a, i)]!, b.values[pick(b, i)]!));
        const dependent = Array.from({ length: size }, (_, i) => a.dependent[pick(a, i)]! || b.dependent[pick(b, i)]!);
        r = { values, dims: size === a.values.length ? a.dims : b.dims, dependent, float };
      }
    }
    if (r && r.values.every(Number.isFinite)) known.set(out, r);
  }

  const result = new Map<string, number[]>();
  for (const [name, t] of known) if (!t.float && !t.dependent.some(Boolean)) result.set(name, t.values);
  return result;
}
