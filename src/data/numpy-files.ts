/** NumPy .npy / .npz reading (uint8, float32/64, int32/64 arrays; C order). Unzipping via fflate. */
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { BadInputError } from '../errors.js';

export interface NpyArray {
  dtype: 'uint8' | 'float32' | 'float64' | 'int32' | 'int64' | 'int8' | 'bool';
  shape: number[];
  data: Uint8Array | Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array;
}

const DESCR: Record<string, NpyArray['dtype']> = {
  '|u1': 'uint8', '<f4': 'float32', '<f8': 'float64', '<i4': 'int32', '<i8': 'int64', '|i1': 'int8', '|b1': 'bool',
};
const SIZE: Record<NpyArray['dtype'], number> = { uint8: 1, float32: 4, float64: 8, int32: 4, int64: 8, int8: 1, bool: 1 };

export function parseNpy(buf: Uint8Array, where: string): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.length < 10 || magic.some((b, i) => buf[i] !== b)) throw new BadInputError(`${where}: not a .npy array`);
  const major = buf[6]!;
  const hlen = major === 1 ? buf[8]! | (buf[9]! << 8) : new DataView(buf.buffer, buf.byteOffset + 8, 4).getUint32(0, true);
  const hstart = major === 1 ? 10 : 12;
  if (hstart + hlen > buf.length) throw new BadInputError(`${where}: truncated .npy header`);
  const header = new TextDecoder().decode(buf.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeStr = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeStr === undefined) throw new BadInputError(`${where}: unreadable .npy header`);
  const dtype = DESCR[descr];
  if (!dtype) throw new BadInputError(`${where}: unsupported dtype ${descr} (use uint8, float32/64 or int32/64)`);
  if (fortran) throw new BadInputError(`${where}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)`);
  const shape = shapeStr.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new BadInputError(`${where}: invalid shape (${shapeStr})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = hstart + hlen;
  if (start + count * SIZE[dtype] > buf.length) throw new BadInputError(`${where}: data shorter than its shape (${shape.join('x')}) needs`);
  const body = buf.slice(start, start + count * SIZE[dtype]).buffer;
  const data = (() => {
    switch (dtype) {
      case 'uint8': case 'bool': return new Uint8Array(body);
      case 'int8': return new Int8Array(body);
      case 'float32': return new Float32Array(body);
      case 'float64': return new Float64Array(body);
      case 'int32': return new Int32Array(body);
      case 'int64': return new BigInt64Array(body);
    }
  })();
  return { dtype, shape, data };
}

export function readNpy(path: string): NpyArray {
  return parseNpy(new Uint8Array(readFileSync(path)), path);
}

export function readNpz(path: string): Map<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(new Uint8Array(readFileSync(path)));
  } catch (e) {
    throw new BadInputError(`${path}: not a readable .npz archive (${(e as Error).message})`);
  }
  const out = new Map<string, NpyArray>();
  for (const [name, bytes] of Object.entries(files)) out.set(name.replace(/\.npy$/, ''), parseNpy(bytes, `${path}:${name}`));
  return out;
}
