/**
 * Resumable runs (--checkpoint <dir>): after every epoch the complete training state is saved atomically:
 * the phase and epochs done, the RNG state, every phase's per-epoch losses, the parameter store (ONNX
 * layout), the optimiser's state, and the outputs of finished phases (e.g. NAD's teacher). A rerun with the
 * same arguments continues after the last saved epoch and ends in the same bytes as an uninterrupted run.
 * A checkpoint made with other arguments is refused.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../errors.js';
import { writeFileAtomic } from '../export/write-model.js';
import type { EpochLoss } from './epoch-loop.js';
import { machineSignature } from '../machine.js';

export interface CheckpointState {
  fingerprint: string;
  /** The phase in progress. */
  phase: string;
  /** Epochs of `phase` completed. */
  epochsDone: number;
  rngState: number;
  histories: Record<string, EpochLoss[]>;
  params: Map<string, Float32Array>;
  optimizer: Map<string, Float32Array>;
  /** Outputs of finished phases, by name (ONNX layout weights). */
  finished: Map<string, Map<string, Float32Array>>;
  /** The machine that wrote it (machine.ts): resuming elsewhere finishes, but cannot promise the same bytes. */
  machine: string;
}

interface Index {
  version: 2;
  fingerprint: string; phase: string; epochsDone: number; rngState: number; machine: string;
  histories: Record<string, EpochLoss[]>;
  blobs: { group: string; name: string; offset: number; length: number }[];
}

const FILE = 'nad-onnx-checkpoint.bin';

export function saveCheckpoint(dir: string, s: CheckpointState): void {
  mkdirSync(dir, { recursive: true });
  const blobs: Index['blobs'] = [];
  const parts: Float32Array[] = [];
  let offset = 0;
  const add = (group: string, name: string, a: Float32Array) => {
    blobs.push({ group, name, offset, length: a.length });
    parts.push(a);
    offset += a.length;
  };
  for (const [k, v] of s.params) add('params', k, v);
  for (const [k, v] of s.optimizer) add('optimizer', k, v);
  for (const [phase, weights] of s.finished) for (const [k, v] of weights) add(`finished:${phase}`, k, v);
  const index: Index = { version: 2, fingerprint: s.fingerprint, phase: s.phase, epochsDone: s.epochsDone, rngState: s.rngState, machine: s.machine, histories: s.histories, blobs };
  const header = new TextEncoder().encode(JSON.stringify(index));
  const dataStart = 8 + header.length + ((8 - ((8 + header.length) % 8)) % 8);
  const body = new Uint8Array(dataStart + offset * 4);
  const view = new DataView(body.buffer);
  view.setUint32(0, header.length, true);
  view.setUint32(4, dataStart, true);
  body.set(header, 8);
  const floats = new Float32Array(body.buffer, dataStart, offset);
  let o = 0;
  for (const p of parts) {
    floats.set(p, o);
    o += p.length;
  }
  writeFileAtomic(join(dir, FILE), body, [], '--checkpoint');
}

export function loadCheckpoint(dir: string, fingerprint: string): CheckpointState | undefined {
  const path = join(dir, FILE);
  if (!existsSync(path)) return undefined;
  const buf = new Uint8Array(readFileSync(path));
  try {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const hlen = view.getUint32(0, true), dataStart = view.getUint32(4, true);
    const index = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + hlen))) as Index;
    if (index.fingerprint !== fingerprint || index.version !== 2) {
      throw new BadInputError(`--checkpoint ${dir}: holds a run with other arguments or inputs; use another folder or delete it`);
    }
    const floats = new Float32Array(buf.slice(dataStart).buffer);
    const params = new Map<string, Float32Array>(), optimizer = new Map<string, Float32Array>();
    const finished = new Map<string, Map<string, Float32Array>>();
    for (const b of index.blobs) {
      const a = floats.slice(b.offset, b.offset + b.length);
      if (a.length !== b.length) throw new Error('truncated');
      if (b.group === 'params') params.set(b.name, a);
      else if (b.group === 'optimizer') optimizer.set(b.name, a);
      else if (b.group.startsWith('finished:')) {
        const ph = b.group.slice('finished:'.length);
        if (!finished.has(ph)) finished.set(ph, new Map());
        finished.get(ph)!.set(b.name, a);
      }
    }
    return { fingerprint: index.fingerprint, phase: index.phase, epochsDone: index.epochsDone, rngState: index.rngState, machine: index.machine ?? 'unknown', histories: index.histories, params, optimizer, finished };
  } catch (e) {
    if (e instanceof BadInputError) throw e;
    throw new BadInputError(`--checkpoint ${dir}: unreadable checkpoint (${(e as Error).message})`);
  }
}

/** A run's checkpoint: what was loaded, the finished phases' outputs, and saving after each epoch. */
export class RunCheckpoint {
  readonly finished: Map<string, Map<string, Float32Array>>;
  readonly histories: Record<string, EpochLoss[]>;

  /** Set when the checkpoint was written on another machine or CPU kind. */
  readonly otherMachine?: string;

  constructor(readonly dir: string | undefined, readonly fingerprint: string, readonly loaded: CheckpointState | undefined, readonly machine = machineSignature()) {
    this.finished = loaded?.finished ?? new Map();
    this.histories = loaded?.histories ?? {};
    if (loaded && loaded.machine !== machine) this.otherMachine = loaded.machine;
  }

  static open(dir: string | undefined, fingerprint: string): RunCheckpoint {
    return new RunCheckpoint(dir, fingerprint, dir ? loadCheckpoint(dir, fingerprint) : undefined);
  }

  /** The saved state of `phase` if the run stopped inside it. */
  resumeOf(phase: string): CheckpointState | undefined {
    return this.loaded?.phase === phase ? this.loaded : undefined;
  }

  save(phase: string, epochsDone: number, rngState: number, params: Map<string, Float32Array>, optimizer: Map<string, Float32Array>): void {
    if (!this.dir) return;
    saveCheckpoint(this.dir, { fingerprint: this.fingerprint, phase, epochsDone, rngState, machine: this.machine, histories: this.histories, params, optimizer, finished: this.finished });
  }

  /** Records a finished phase's output (kept in every later save). */
  finish(phase: string, output: Map<string, Float32Array>): void {
    this.finished.set(phase, output);
  }
}
