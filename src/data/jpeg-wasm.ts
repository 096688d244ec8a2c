/**
 * Baseline/progressive 8-bit JPEGs decoded by libjpeg-turbo's decoder compiled to WebAssembly (MozJPEG, as
 * @jsquash/jpeg ships it): about 40 µs for a 32x32 CIFAR image against 0.5-0.7 ms through sharp's libvips
 * pipeline, with the same pixels (all 6 M values of 2,000 CIFAR test images equal). The decoder runs in
 * wasm's sandbox, and only on files whose header gives the size the model takes, so a hostile header cannot
 * make it grow its memory. Anything else (other sizes, CMYK, 12-bit, a grey model) stays with sharp.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import decode, { init } from '@jsquash/jpeg/decode.js';

let ready: Promise<void> | undefined;

function load(): Promise<void> {
  const wasm = createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
  // Given the bytes, the Emscripten loader neither fetches nor resolves a URL; libjpeg's messages about a
  // corrupt file are dropped (sharp then names the file and the fault).
  return init({ wasmBinary: readFileSync(wasm), print: () => {}, printErr: () => {} } as Parameters<typeof init>[0]);
}

/** Height, width, components and precision from a JPEG's start-of-frame marker; undefined if there is none. */
export function jpegFrame(b: Uint8Array): { h: number; w: number; components: number; precision: number } | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const m = b[i + 1]!;
    if (m === 0xff) { i++; continue; } // fill byte
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { i += 2; continue; } // markers without a length
    if (m === 0xda || m === 0xd9) return undefined; // scan or end before any frame header
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    const sof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (sof) {
      if (i + 9 >= b.length) return undefined;
      return { precision: b[i + 4]!, h: (b[i + 5]! << 8) | b[i + 6]!, w: (b[i + 7]! << 8) | b[i + 8]!, components: b[i + 9]! };
    }
    i += 2 + len;
  }
  return undefined;
}

/**
 * HWC RGB bytes of a JPEG of exactly h x w with 1 or 3 components at 8 bits, or undefined when this
 * decoder should not take the file (the caller then uses sharp, which also names what is wrong with it).
 */
export async function decodeJpegRgb(bytes: Uint8Array, h: number, w: number): Promise<Uint8Array | undefined> {
  // A file cut before its end-of-image marker is left to sharp, which refuses it (libjpeg only warns).
  const ended = bytes.length >= 2 && bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9;
  const f = ended ? jpegFrame(bytes) : undefined;
  if (!f || f.h !== h || f.w !== w || f.precision !== 8 || (f.components !== 1 && f.components !== 3)) return undefined;
  let rgba: Uint8ClampedArray;
  try {
    // A decoder that does not load (its wasm file missing from an install) leaves every file to sharp.
    ready ??= load();
    await ready;
    // A copy of just these bytes: a Node Buffer may be a view into a shared pool.
    const img = await decode(new Uint8Array(bytes).buffer, { preserveOrientation: false });
    if (img.width !== w || img.height !== h) return undefined;
    rgba = img.data;
  } catch {
    // Corrupt: sharp gives the error message. A libjpeg error aborts the Emscripten module, so the next
    // file starts a fresh one (and a decoder that failed to load is tried again).
    ready = undefined;
    return undefined;
  }
  const out = new Uint8Array(h * w * 3);
  for (let p = 0, q = 0; p < h * w; p++, q += 4) {
    out[3 * p] = rgba[q]!;
    out[3 * p + 1] = rgba[q + 1]!;
    out[3 * p + 2] = rgba[q + 2]!;
  }
  return out;
}
