/**
 * Seeded, bounded fuzzing of model loading: mutated fixture files must end in success with a usable model
 * or in a BadInputError (exit code 2) — never another exception, a hang or an unbounded allocation.
 * FUZZ_CASES (per mutation kind) raises the count for bench runs.
 */
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../src/errors.js';
import { modelBytes } from '../src/export/write-model.js';
import { onnx } from '../src/onnx/onnx-schema.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { Rng } from '../src/data/random.js';
import { createSession } from '../src/verify/onnx-runtime.js';
import { fmnist, MODELS, modelPath, wasm } from './helpers/fixtures.js';
import { checkFiniteLogits, imageTensors } from '../src/verify/finite-logits.js';
import type { Dataset } from '../src/data/dataset.js';

const CASES = Number(process.env.FUZZ_CASES ?? 12);
const dir = mkdtempSync(join(tmpdir(), 'nad-fuzz-'));
const base = new Uint8Array(readFileSync(modelPath('wrn16_1')));
const counts: Record<string, { ok: number; refused: number }> = {};
const probeImages: Dataset = (() => {
  const d = fmnist('test', 8);
  return { x: d.x, labels: d.y, n: d.n, h: d.h, w: d.w, c: d.c, classes: [], source: 'fmnist-test' };
})();

beforeAll(wasm);

type Mutation = (rng: Rng) => Uint8Array;
const decoded = () => onnx.ModelProto.decode(base);
const encode = (m: onnx.ModelProto) => onnx.ModelProto.encode(m).finish();

const mutations: Record<string, Mutation> = {
  truncation: (rng) => base.subarray(0, rng.int(base.length)),
  'bit flips': (rng) => {
    const b = base.slice();
    for (let i = 0; i < 1 + rng.int(8); i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
    return b;
  },
  'huge or negative dims': (rng) => {
    const m = decoded();
    const t = m.graph!.initializer![rng.int(m.graph!.initializer!.length)]!;
    t.dims![rng.int(t.dims!.length)] = [2 ** 40, -5, 2 ** 31, 0][rng.int(4)]!;
    return encode(m);
  },
  'cyclic graph': (rng) => {
    const m = decoded();
    const nodes = m.graph!.node!;
    const a = nodes[1 + rng.int(nodes.length - 2)]!, b = nodes[rng.int(nodes.length)]!;
    a.input![0] = b.output![0]!;
    return encode(m);
  },
  'duplicate names': (rng) => {
    const m = decoded();
    const nodes = m.graph!.node!;
    nodes[rng.int(nodes.length)]!.output![0] = nodes[rng.int(nodes.length)]!.output![0]!;
    return encode(m);
  },
  'missing initializer': (rng) => {
    const m = decoded();
    m.graph!.initializer!.splice(rng.int(m.graph!.initializer!.length), 1);
    return encode(m);
  },
  'exponent bit flips in float initializers': (rng) => {
    const m = decoded();
    const floats = m.graph!.initializer!.filter((t) => t.dataType === 1 && t.rawData && t.rawData.length >= 4);
    for (let k = 0; k < 1 + rng.int(3); k++) {
      const t = floats[rng.int(floats.length)]!;
      const raw = t.rawData!.slice();
      // Little-endian float32: byte 3 holds the sign and the exponent's top 7 bits.
      raw[4 * rng.int(raw.length / 4) + 3] ^= 1 << rng.int(7);
      t.rawData = raw;
    }
    return encode(m);
  },
  'an initializer set to NaN or infinity': (rng) => {
    const m = decoded();
    const floats = m.graph!.initializer!.filter((t) => t.dataType === 1 && t.rawData && t.rawData.length >= 4);
    const t = floats[rng.int(floats.length)]!;
    const v = new Float32Array(Uint8Array.from(t.rawData!).buffer);
    const bad = [NaN, Infinity, -Infinity][rng.int(3)]!;
    if (rng.next() < 0.5) v.fill(bad);
    else v[rng.int(v.length)] = bad;
    t.rawData = new Uint8Array(v.buffer);
    return encode(m);
  },
  'wrong dtype': (rng) => {
    const m = decoded();
    const t = m.graph!.initializer![rng.int(m.graph!.initializer!.length)]!;
    t.dataType = [7, 11, 16, 0, 99][rng.int(5)]!;
    return encode(m);
  },
};

// External data: the opset-18 fixture whose weights live in wrn16_1_opset18.onnx.data.
const extDir = join(MODELS, 'external');
const extBase = new Uint8Array(readFileSync(join(extDir, 'wrn16_1_opset18.onnx')));
const extDecoded = () => onnx.ModelProto.decode(extBase);
const hostile = ['../../etc/passwd', '/etc/passwd', '../wrn16_1.onnx', 'link-out.data', 'missing.data', '.', 'sub/../../x.data'];

/** Mutations that need the model in a folder of its own (with its data file and maybe a symlink). */
const externalMutations: Record<string, (rng: Rng) => { bytes: Uint8Array; link?: boolean }> = {
  'external data location': (rng) => {
    const m = extDecoded();
    const t = m.graph!.initializer![rng.int(m.graph!.initializer!.length)]!;
    const loc = hostile[rng.int(hostile.length)]!;
    for (const kv of t.externalData ?? []) if (kv.key === 'location') kv.value = loc;
    return { bytes: encode(m), link: loc === 'link-out.data' };
  },
  'external data range': (rng) => {
    const m = extDecoded();
    const t = m.graph!.initializer![rng.int(m.graph!.initializer!.length)]!;
    const key = rng.next() < 0.5 ? 'offset' : 'length';
    const value = ['-1', '99999999999', String(2 ** 53), 'abc', '700136', '1e3'][rng.int(6)]!;
    for (const kv of t.externalData ?? []) if (kv.key === key) kv.value = value;
    return { bytes: encode(m) };
  },
};

async function attemptExternal(kind: string, i: number, made: { bytes: Uint8Array; link?: boolean }): Promise<'ok' | 'refused'> {
  const sub = mkdtempSync(join(dir, `ext-${kind.replace(/\W/g, '')}-${i}-`));
  copyFileSync(join(extDir, 'wrn16_1_opset18.onnx.data'), join(sub, 'wrn16_1_opset18.onnx.data'));
  if (made.link) symlinkSync('/etc/hostname', join(sub, 'link-out.data'));
  return attempt(made.bytes, join(sub, 'model.onnx'));
}

async function attempt(bytes: Uint8Array, path: string): Promise<'ok' | 'refused'> {
  writeFileSync(path, bytes);
  let model: TrainableModel | undefined;
  try {
    model = TrainableModel.fromFile(path);
    const session = await createSession(modelBytes(model.source), path);
    // A loaded model must also compute finite logits on clean images, or be refused as damaged.
    const source = model.source;
    await checkFiniteLogits(session, path, probeImages, { flag: '--data' }, { tensors: imageTensors(model.graph), bytesWith: (n) => modelBytes(source, undefined, undefined, n) })
      .finally(() => session.release());
    return 'ok';
  } catch (e) {
    if (e instanceof BadInputError) {
      expect(e.message.split('\n')).toHaveLength(1);
      return 'refused';
    }
    throw e;
  } finally {
    model?.dispose();
  }
}

describe('fuzzing model loading', () => {
  for (const [kind, mutate] of Object.entries(mutations)) {
    it(`${kind}: ${CASES} cases end in a model or a one-line BadInputError`, async () => {
      const rng = new Rng(kind.length * 7919);
      counts[kind] = { ok: 0, refused: 0 };
      for (let i = 0; i < CASES; i++) {
        const r = await attempt(mutate(rng), join(dir, `case-${kind.replace(/\W/g, '')}-${i}.onnx`));
        counts[kind]![r]++;
      }
      console.log(`fuzz ${kind}: ${counts[kind]!.ok} loaded, ${counts[kind]!.refused} refused`);
      expect(counts[kind]!.ok + counts[kind]!.refused).toBe(CASES);
      if (kind === 'an initializer set to NaN or infinity') expect(counts[kind]!.ok).toBe(0);
    });
  }
  for (const [kind, mutate] of Object.entries(externalMutations)) {
    it(`${kind}: ${CASES} cases end in a model or a one-line BadInputError`, async () => {
      const rng = new Rng(kind.length * 104729);
      counts[kind] = { ok: 0, refused: 0 };
      for (let i = 0; i < CASES; i++) counts[kind]![await attemptExternal(kind, i, mutate(rng))]++;
      console.log(`fuzz ${kind}: ${counts[kind]!.ok} loaded, ${counts[kind]!.refused} refused`);
      expect(counts[kind]!.ok + counts[kind]!.refused).toBe(CASES);
      // Nothing outside the folder is ever read as weights: hostile locations are all refused.
      if (kind === 'external data location') expect(counts[kind]!.ok).toBe(0);
    });
  }
});
