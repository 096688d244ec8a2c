/**
 * Resumable runs (--checkpoint <dir>): after every epoch the complete training state is saved (all
 * variables in their stored layout, SGD momentum, RNG state, per-epoch losses, and the finished teacher's
 * weights), atomically. A rerun with the same arguments continues after the last saved epoch and ends in
 * the same bytes as an uninterrupted run. A checkpoint made with other arguments is refused.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../errors.js';
import { writeFileAtomic } from '../export/write-model.js';
import type { EpochLoss } from './train-epochs.js';

export interface CheckpointState {
  fingerprint: string;
  phase: 'teacher' | 'nad';
  /** Epochs of `phase` completed. */
  epochsDone: number;
  rngState: number;
  teacherHistory: EpochLoss[];
  nadHistory: EpochLoss[];
  /** Variables of the model being trained, by parameter name. */
  params: Map<string, Float32Array>;
  /** SGD momentum buffers, in the model's trainable-variable order. */
  momentum: (Float32Array | null)[];
  /** The finished teacher's weights in ONNX layout (NAD phase only). */
  teacherWeights?: Map<string, Float32Array>;
}

interface Index {
  fingerprint: string; phase: 'teacher' | 'nad'; epochsDone: number; rngState: number;
  teacherHistory: EpochLoss[]; nadHistory: EpochLoss[];
  blobs: { group: 'params' | 'momentum' | 'teacher'; name: string; offset: number; length: number }[];
}

const FILE = 'nad-onnx-checkpoint.bin';

export function saveCheckpoint(dir: string, s: CheckpointState): void {
  mkdirSync(dir, { recursive: true });
  const blobs: Index['blobs'] = [];
  const parts: Float32Array[] = [];
  let offset = 0;
  const add = (group: Index['blobs'][number]['group'], name: string, a: Float32Array) => {
    blobs.push({ group, name, offset, length: a.length });
    parts.push(a);
    offset += a.length;
  };
  for (const [k, v] of s.params) add('params', k, v);
  s.momentum.forEach((m, i) => m && add('momentum', String(i), m));
  for (const [k, v] of s.teacherWeights ?? []) add('teacher', k, v);
  const index: Index = { fingerprint: s.fingerprint, phase: s.phase, epochsDone: s.epochsDone, rngState: s.rngState, teacherHistory: s.teacherHistory, nadHistory: s.nadHistory, blobs };
  const header = new TextEncoder().encode(JSON.stringify(index));
  const body = new Uint8Array(8 + header.length + offset * 4 + 8);
  const view = new DataView(body.buffer);
  view.setUint32(0, header.length, true);
  body.set(header, 8);
  const dataStart = 8 + header.length + ((8 - ((8 + header.length) % 8)) % 8);
  const floats = new Float32Array(body.buffer, dataStart, offset);
  let o = 0;
  for (const p of parts) {
    floats.set(p, o);
    o += p.length;
  }
  view.setUint32(4, dataStart, true);
  writeFileAtomic(join(dir, FILE), body.subarray(0, dataStart + offset * 4));
}

export function loadCheckpoint(dir: string, fingerprint: string): CheckpointState | undefined {
  const path = join(dir, FILE);
  if (!existsSync(path)) return undefined;
  const buf = new Uint8Array(readFileSync(path));
  try {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const hlen = view.getUint32(0, true), dataStart = view.getUint32(4, true);
    const index = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + hlen))) as Index;
    if (index.fingerprint !== fingerprint) {
      throw new BadInputError(`--checkpoint ${dir}: holds a run with other arguments or inputs; use another folder or delete it`);
    }
    const floats = new Float32Array(buf.slice(dataStart).buffer);
    const params = new Map<string, Float32Array>(), teacherWeights = new Map<string, Float32Array>();
    const momentum: (Float32Array | null)[] = [];
    for (const b of index.blobs) {
      const a = floats.slice(b.offset, b.offset + b.length);
      if (b.group === 'params') params.set(b.name, a);
      else if (b.group === 'teacher') teacherWeights.set(b.name, a);
      else momentum[Number(b.name)] = a;
    }
    for (let i = 0; i < momentum.length; i++) momentum[i] ??= null;
    return { ...index, params, momentum, teacherWeights: teacherWeights.size ? teacherWeights : undefined };
  } catch (e) {
    if (e instanceof BadInputError) throw e;
    throw new BadInputError(`--checkpoint ${dir}: unreadable checkpoint (${(e as Error).message})`);
  }
}
