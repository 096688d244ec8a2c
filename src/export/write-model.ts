/**
 * Writes trained values back into the original ONNX bytes and nothing else: initializers are edited at the
 * wire level (every other byte of the file is copied as it was), external data is inlined so the result
 * is one self-contained file, and provenance goes into metadata_props. The one structural edit: an
 * Identity that forwarded a shared initializer (untie-initializers.ts) is replaced by its own initializer.
 * No timestamps: reruns give the same bytes.
 */
import { closeSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { BadInputError } from '../errors.js';
import type { LoadedModel } from '../import/load-model.js';
import { concatBytes, fieldString, lengthDelimited, parseFields, type WireField } from '../onnx/protobuf-wire.js';
import { ENTRY_KEY, ENTRY_VALUE, GRAPH_INITIALIZER, MODEL_GRAPH, MODEL_METADATA, TENSOR_DATA_LOCATION, TENSOR_EXTERNAL_DATA, TENSOR_FLOAT_DATA, TENSOR_NAME, TENSOR_RAW_DATA } from '../onnx/field-numbers.js';

export const MAX_INLINE_BYTES = 2 ** 31 - 1;

export interface ModelEdits {
  /** New little-endian payloads by initializer name (same dtype and element count as before). */
  tensors?: Map<string, Uint8Array>;
  /** metadata_props entries to set (replacing entries with the same key, appended after the others). */
  metadata?: [string, string][];
  /** Extra graph outputs (float tensors), e.g. the taps a frozen teacher must return to onnxruntime. */
  extraOutputs?: string[];
  /**
   * Untied initializers (untie-initializers.ts): the Identity node producing each name is dropped and an
   * initializer of that name is added, a copy of `source` (dtype, dims) holding `payload`.
   */
  materialize?: Map<string, { source: string; payload: Uint8Array }>;
}

const GRAPH_NODE = 1, GRAPH_OUTPUT = 12;
const NODE_OUTPUT = 2;

/** ValueInfoProto { name, type { tensor_type { elem_type: FLOAT } } } */
function floatOutput(name: string): Uint8Array {
  const tensorType = Uint8Array.of(0x08, 0x01); // TypeProto.Tensor { elem_type: 1 }
  const typeProto = concatBytes(lengthDelimited(1, tensorType)); // TypeProto { tensor_type }
  return concatBytes([...lengthDelimited(1, new TextEncoder().encode(name)), ...lengthDelimited(2, typeProto)]);
}

function rewriteTensor(src: Uint8Array, f: WireField, payload: Uint8Array, rename?: string): Uint8Array[] {
  const parts: Uint8Array[] = [];
  if (rename !== undefined) parts.push(...lengthDelimited(TENSOR_NAME, new TextEncoder().encode(rename)));
  for (const tf of parseFields(src, f.dataStart, f.dataEnd)) {
    // Drop every form the values had (raw, typed, external) and write them once as raw_data.
    if (tf.no === TENSOR_RAW_DATA || tf.no === TENSOR_FLOAT_DATA || tf.no === TENSOR_EXTERNAL_DATA || tf.no === TENSOR_DATA_LOCATION) continue;
    if (rename !== undefined && tf.no === TENSOR_NAME) continue;
    parts.push(src.subarray(tf.start, tf.end));
  }
  parts.push(...lengthDelimited(TENSOR_RAW_DATA, payload));
  return lengthDelimited(GRAPH_INITIALIZER, concatBytes(parts));
}

function tensorName(src: Uint8Array, f: WireField): string {
  const nameField = parseFields(src, f.dataStart, f.dataEnd).find((x) => x.no === TENSOR_NAME);
  return nameField ? fieldString(src, nameField) : '';
}

/** Applies edits to ONNX model bytes. With no edits the result equals the input, byte for byte. */
export function editModelBytes(src: Uint8Array, edits: ModelEdits): Uint8Array {
  const tensors = edits.tensors ?? new Map<string, Uint8Array>();
  const materialize = edits.materialize ?? new Map<string, { source: string; payload: Uint8Array }>();
  const sources = new Map<string, WireField | undefined>([...materialize.values()].map((m) => [m.source, undefined]));
  const metaKeys = new Set((edits.metadata ?? []).map(([k]) => k));
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const mf of parseFields(src)) {
    if (mf.no === MODEL_GRAPH && mf.wireType === 2) {
      const gparts: Uint8Array[] = [];
      for (const gf of parseFields(src, mf.dataStart, mf.dataEnd)) {
        if (gf.no === GRAPH_NODE && gf.wireType === 2 && materialize.size > 0) {
          const outs = parseFields(src, gf.dataStart, gf.dataEnd).filter((x) => x.no === NODE_OUTPUT);
          if (outs.some((x) => materialize.has(fieldString(src, x)))) continue;
        }
        if (gf.no === GRAPH_INITIALIZER && gf.wireType === 2) {
          const name = tensorName(src, gf);
          if (sources.has(name)) sources.set(name, gf);
          const payload = tensors.get(name);
          if (payload) {
            gparts.push(...rewriteTensor(src, gf, payload));
            seen.add(name);
            continue;
          }
        }
        gparts.push(src.subarray(gf.start, gf.end));
      }
      for (const [name, m] of materialize) {
        const from = sources.get(m.source);
        if (!from) throw new Error(`initializer '${m.source}' not found while writing the model`);
        gparts.push(...rewriteTensor(src, from, m.payload, name));
      }
      for (const o of edits.extraOutputs ?? []) gparts.push(...lengthDelimited(GRAPH_OUTPUT, floatOutput(o)));
      out.push(...lengthDelimited(MODEL_GRAPH, concatBytes(gparts)));
      continue;
    }
    if (mf.no === MODEL_METADATA && mf.wireType === 2 && metaKeys.size > 0) {
      const key = parseFields(src, mf.dataStart, mf.dataEnd).find((x) => x.no === ENTRY_KEY);
      if (key && metaKeys.has(fieldString(src, key))) continue;
    }
    out.push(src.subarray(mf.start, mf.end));
  }
  for (const name of tensors.keys()) {
    if (!seen.has(name)) throw new Error(`initializer '${name}' not found while writing the model`);
  }
  const enc = new TextEncoder();
  for (const [k, v] of edits.metadata ?? []) {
    const entry = concatBytes([...lengthDelimited(ENTRY_KEY, enc.encode(k)), ...lengthDelimited(ENTRY_VALUE, enc.encode(v))]);
    out.push(...lengthDelimited(MODEL_METADATA, entry));
  }
  return concatBytes(out);
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

/**
 * The model as one self-contained byte array: external data inlined, optional new weights. This is what
 * onnxruntime is given (never a path it would resolve itself).
 */
export function modelBytes(
  model: LoadedModel, weights?: Map<string, Float32Array>, metadata?: [string, string][], extraOutputs?: string[],
): Uint8Array {
  const tensors = new Map<string, Uint8Array>();
  for (const [name] of model.external) {
    const v = model.initializers.get(name)!;
    const d = v.data;
    tensors.set(name, new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice());
  }
  const materialize = new Map<string, { source: string; payload: Uint8Array }>();
  for (const [name, w] of weights ?? []) {
    const v = model.initializers.get(name);
    if (!v || v.dtype !== 'float32' || v.data.length !== w.length) throw new Error(`weights for '${name}' do not match the initializer`);
    if (!model.untied.has(name)) tensors.set(name, f32Bytes(w));
  }
  for (const [name, source] of model.untied) {
    const w = weights?.get(name) ?? (model.initializers.get(name)!.data as Float32Array);
    materialize.set(name, { source, payload: f32Bytes(w) });
  }
  const bytes = editModelBytes(model.bytes, { tensors, metadata, extraOutputs, materialize });
  if (bytes.length > MAX_INLINE_BYTES) throw new BadInputError(`${model.path}: the cleaned model would exceed 2 GB as one file (not supported)`);
  return bytes;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return real(a) === real(b);
}

/** Refuses an output path that is one of the inputs (the first is the model), before any work is done. */
export function refuseInputPath(out: string, protect: string[], flag: string): void {
  for (const p of protect) if (samePath(out, p)) throw new BadInputError(`${flag} ${out}: refusing to overwrite ${p === protect[0] ? 'the input model' : `an input (${p})`}`);
}

/**
 * Writes bytes to `out` atomically (temporary file in the same folder, fsync, rename). Refuses to write
 * over the input model or its external data file. `flag`: the option that named the file, for messages.
 */
export function writeFileAtomic(out: string, bytes: Uint8Array, protect: string[] = [], flag = '--out'): void {
  refuseInputPath(out, protect, flag);
  const tmp = join(dirname(resolve(out)), `.${basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o644);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, out);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    if (e instanceof BadInputError) throw e;
    throw new BadInputError(`${flag} ${out}: cannot write (${(e as Error).message})`);
  }
}
