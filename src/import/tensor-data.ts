/** Decodes TensorProto payloads (raw_data, typed fields or already-resolved external bytes) into typed arrays. */
import Long from 'long';
import { BadInputError } from '../errors.js';
import { DataType, type TensorProto } from '../onnx/onnx-schema.js';

export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'bool' | 'float16';
export type TypedData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;

export interface TensorValue {
  dtype: DType;
  dims: number[];
  data: TypedData;
}

const DTYPES: Record<number, { dtype: DType; size: number }> = {
  [DataType.FLOAT]: { dtype: 'float32', size: 4 },
  [DataType.DOUBLE]: { dtype: 'float64', size: 8 },
  [DataType.INT32]: { dtype: 'int32', size: 4 },
  [DataType.INT64]: { dtype: 'int64', size: 8 },
  [DataType.UINT8]: { dtype: 'uint8', size: 1 },
  [DataType.INT8]: { dtype: 'int8', size: 1 },
  [DataType.BOOL]: { dtype: 'bool', size: 1 },
  [DataType.FLOAT16]: { dtype: 'float16', size: 2 },
};

/** The ONNX data type of a decoded dtype (the inverse of the table above). */
export function onnxDataType(dtype: DType): number {
  return Number(Object.entries(DTYPES).find(([, v]) => v.dtype === dtype)![0]);
}

/** Largest element count accepted for one tensor before any allocation (1 G elements). */
export const MAX_ELEMENTS = 2 ** 30;

export function toNumber(v: unknown): number {
  if (v == null) return 0;
  if (typeof v === 'number') return v;
  const n = Long.fromValue(v as Long);
  if (n.greaterThan(Number.MAX_SAFE_INTEGER) || n.lessThan(Number.MIN_SAFE_INTEGER)) return Number.NaN;
  return n.toNumber();
}

export function elementInfo(dataType: number, where: string): { dtype: DType; size: number } {
  const info = DTYPES[dataType];
  if (!info) throw new BadInputError(`${where}: unsupported tensor data type ${dataType}`);
  return info;
}

/** Checks declared dims (non-negative, finite, bounded) and returns the element count. */
export function checkedCount(dims: number[], where: string): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new BadInputError(`${where}: invalid dimension ${d}`);
    n *= d;
    if (n > MAX_ELEMENTS) throw new BadInputError(`${where}: tensor too large (over ${MAX_ELEMENTS} elements)`);
  }
  return n;
}

function fromBytes(bytes: Uint8Array, dtype: DType, count: number): TypedData {
  // Copy so the result is aligned and independent of the file buffer. (Not bytes.slice(): on a Node Buffer,
  // which protobufjs hands out when decoding from one, slice is a view of the whole underlying buffer.)
  const buf = new Uint8Array(bytes).buffer;
  switch (dtype) {
    case 'float32': return new Float32Array(buf, 0, count);
    case 'float64': return new Float64Array(buf, 0, count);
    case 'int32': return new Int32Array(buf, 0, count);
    case 'int64': return new BigInt64Array(buf, 0, count);
    case 'uint8': case 'bool': return new Uint8Array(buf, 0, count);
    case 'int8': return new Int8Array(buf, 0, count);
    case 'float16': return new Uint16Array(buf, 0, count);
  }
}

/**
 * Decodes one tensor. `external` is the already bounds-checked external payload when the tensor's
 * data lives outside the model file.
 */
export function decodeTensor(t: TensorProto, where: string, external?: Uint8Array): TensorValue {
  const { dtype, size } = elementInfo(t.dataType ?? 0, where);
  const dims = (t.dims ?? []).map(toNumber);
  const count = checkedCount(dims, where);
  const raw = external ?? (t.rawData && t.rawData.length > 0 ? t.rawData : undefined);
  if (raw) {
    if (raw.length !== count * size) {
      throw new BadInputError(`${where}: data holds ${raw.length} bytes, dims [${dims.join(',')}] need ${count * size}`);
    }
    return { dtype, dims, data: fromBytes(raw, dtype, count) };
  }
  const typed = ((): ArrayLike<unknown> | undefined => {
    switch (dtype) {
      case 'float32': return t.floatData ?? undefined;
      case 'float64': return t.doubleData ?? undefined;
      case 'int64': return t.int64Data ?? undefined;
      default: return t.int32Data ?? undefined; // int32, uint8, int8, bool, float16 live in int32_data
    }
  })() ?? [];
  if (typed.length !== count) {
    throw new BadInputError(`${where}: holds ${typed.length} values, dims [${dims.join(',')}] need ${count}`);
  }
  switch (dtype) {
    case 'float32': return { dtype, dims, data: Float32Array.from(typed as ArrayLike<number>) };
    case 'float64': return { dtype, dims, data: Float64Array.from(typed as ArrayLike<number>) };
    case 'int64': {
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = BigInt(Long.fromValue(typed[i] as Long).toString());
      return { dtype, dims, data: out };
    }
    case 'int32': return { dtype, dims, data: Int32Array.from(typed as ArrayLike<number>) };
    case 'int8': return { dtype, dims, data: Int8Array.from(typed as ArrayLike<number>) };
    case 'float16': return { dtype, dims, data: Uint16Array.from(typed as ArrayLike<number>) };
    default: return { dtype, dims, data: Uint8Array.from(typed as ArrayLike<number>) };
  }
}

/** Values of an integer tensor (shape, axes, pads) as plain numbers. */
export function intValues(v: TensorValue): number[] {
  return Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x));
}

export function floatValues(v: TensorValue): Float32Array {
  if (v.dtype === 'float32') return v.data as Float32Array;
  return Float32Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x));
}

/** How many values of a floating-point tensor are NaN or infinite (0 for integer tensors). */
export function countNonFinite(v: TensorValue): number {
  let n = 0;
  if (v.dtype === 'float32' || v.dtype === 'float64') {
    for (const x of v.data as Float32Array | Float64Array) if (!Number.isFinite(x)) n++;
  } else if (v.dtype === 'float16') {
    for (const x of v.data as Uint16Array) if ((x & 0x7c00) === 0x7c00) n++; // exponent all ones: inf or NaN
  }
  return n;
}
