/** IDX files (MNIST / Fashion-MNIST style), optionally gzipped: images `*-images-idx3-ubyte[.gz]`, labels beside. */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { BadInputError } from '../errors.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function readIdx(path: string): IdxArray {
  let buf = new Uint8Array(readFileSync(path));
  if (path.endsWith('.gz')) {
    try {
      buf = new Uint8Array(gunzipSync(buf, { maxOutputLength: 2 ** 31 - 1 }));
    } catch (e) {
      throw new BadInputError(`${path}: not a valid gzip file (${(e as Error).message})`);
    }
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new BadInputError(`${path}: not an IDX file`);
  if (buf[2] !== 0x08) throw new BadInputError(`${path}: only unsigned-byte IDX files are supported`);
  const rank = buf[3]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 + 4 * rank) throw new BadInputError(`${path}: truncated IDX header`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (buf.length - start !== count) throw new BadInputError(`${path}: holds ${buf.length - start} values, header says ${count}`);
  return { dims, data: buf.subarray(start) };
}

/** The labels file that belongs to an images file (train-images-idx3-ubyte -> train-labels-idx1-ubyte). */
export function labelsFileFor(imagesPath: string): string {
  const p = imagesPath.replace(/images-idx3-ubyte/, 'labels-idx1-ubyte');
  if (p === imagesPath || !existsSync(p)) throw new BadInputError(`${imagesPath}: no labels file beside it (expected ${p})`);
  return p;
}
