/**
 * Reads an ONNX file from an untrusted source: decodes it, resolves external data only inside the model's
 * own folder (offsets and lengths checked, symlinks resolved), and decodes every initializer up front so
 * that nothing later allocates from a size the file merely declares.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { BadInputError } from '../errors.js';
import { onnx, type ModelProto, type TensorProto } from '../onnx/onnx-schema.js';
import { countNonFinite, decodeTensor, toNumber, type TensorValue } from './tensor-data.js';
import { checkWireStructure } from '../onnx/wire-structure.js';
import { untieForwardedInitializers } from './untie-initializers.js';
import type { ExternalRef, LoadedModel } from './loaded-model.js';

/** Refuse model files larger than this before reading them (ONNX's own protobuf limit is 2 GB). */
export const MAX_MODEL_BYTES = 2 ** 31;

export type { ExternalRef, LoadedModel } from './loaded-model.js';

function readModelBytes(path: string): Uint8Array {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new BadInputError(`${path}: cannot read model (no such file)`);
  }
  if (!st.isFile()) throw new BadInputError(`${path}: not a regular file`);
  if (st.size > MAX_MODEL_BYTES) throw new BadInputError(`${path}: model file larger than 2 GB`);
  if (st.size === 0) throw new BadInputError(`${path}: empty file, not an ONNX model`);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new BadInputError(`${path}: cannot read model (${(e as Error).message})`);
  }
}

export function decodeModel(bytes: Uint8Array, path: string): ModelProto {
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new BadInputError(`${path}: not a valid ONNX model (${(e as Error).message.split('\n')[0]})`);
  }
  const g = proto.graph;
  if (!g || !g.node || g.node.length === 0) throw new BadInputError(`${path}: not a valid ONNX model (no graph nodes)`);
  if (!g.output || g.output.length === 0) throw new BadInputError(`${path}: graph has no outputs`);
  return proto;
}

/** Resolves an external-data location strictly inside the model's folder, following symlinks. */
export function resolveExternal(modelPath: string, t: TensorProto, where: string): ExternalRef {
  const entries = new Map<string, string>();
  for (const kv of t.externalData ?? []) entries.set(kv.key ?? '', kv.value ?? '');
  const location = entries.get('location');
  if (!location) throw new BadInputError(`${where}: external data without a location`);
  const dir = realpathSync(dirname(resolve(modelPath)));
  if (isAbsolute(location) || normalize(location).split(/[\\/]/).includes('..')) {
    throw new BadInputError(`${where}: external data location '${location}' leaves the model's folder`);
  }
  const candidate = join(dir, location);
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch {
    throw new BadInputError(`${where}: external data file '${location}' not found beside the model`);
  }
  const rel = relative(dir, real);
  if (rel.startsWith('..') || isAbsolute(rel) || rel.split(sep)[0] === '..') {
    throw new BadInputError(`${where}: external data location '${location}' resolves outside the model's folder`);
  }
  if (!statSync(real).isFile()) throw new BadInputError(`${where}: external data location '${location}' is not a file`);
  const offset = Number(entries.get('offset') ?? '0');
  const lengthStr = entries.get('length');
  if (!Number.isSafeInteger(offset) || offset < 0) throw new BadInputError(`${where}: invalid external data offset`);
  return { file: real, offset, length: lengthStr === undefined ? -1 : Number(lengthStr) };
}

function readExternal(ref: ExternalRef, where: string, cache: Map<string, number>): Uint8Array {
  const fd = openSync(ref.file, 'r');
  try {
    const size = cache.get(ref.file) ?? fstatSync(fd).size;
    cache.set(ref.file, size);
    const length = ref.length < 0 ? size - ref.offset : ref.length;
    if (!Number.isSafeInteger(length) || length < 0 || ref.offset + length > size) {
      throw new BadInputError(`${where}: external data range [${ref.offset}, +${length}) lies past the end of ${basename(ref.file)} (${size} bytes)`);
    }
    ref.length = length;
    const out = new Uint8Array(length);
    if (length > 0) readSync(fd, out, 0, length, ref.offset);
    return out;
  } finally {
    closeSync(fd);
  }
}

export function loadModel(path: string): LoadedModel {
  return modelFromBytes(readModelBytes(path), path);
}

/** A model already in memory (e.g. a cleaned model before it is written); `path` names it and locates external data. */
export function modelFromBytes(bytes: Uint8Array, path: string): LoadedModel {
  const proto = decodeModel(bytes, path);
  checkWireStructure(bytes, path);
  const g = proto.graph!;
  const initializers = new Map<string, TensorValue>();
  const external = new Map<string, ExternalRef>();
  const sizes = new Map<string, number>();
  for (const t of g.initializer ?? []) {
    const name = t.name ?? '';
    const where = `${path}: initializer '${name}'`;
    if (!name) throw new BadInputError(`${path}: initializer without a name`);
    if (initializers.has(name)) throw new BadInputError(`${where} is defined twice`);
    let ext: Uint8Array | undefined;
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      const ref = resolveExternal(path, t, where);
      ext = readExternal(ref, where, sizes);
      external.set(name, ref);
    }
    const value = decodeTensor(t, where, ext);
    // Weights that already hold NaN or infinity are damage (flipped exponent bits), not something training can fix.
    const bad = countNonFinite(value);
    if (bad > 0) throw new BadInputError(`${where} holds ${bad} NaN or infinite value${bad === 1 ? '' : 's'} (of ${value.data.length}): the model file is damaged`);
    initializers.set(name, value);
  }
  const opsetEntry = (proto.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = opsetEntry ? toNumber(opsetEntry.version) : 1;
  const model: LoadedModel = { path, bytes, proto, initializers, external, untied: new Map(), opset };
  untieForwardedInitializers(model);
  return model;
}
