/**
 * Seeded, bounded fuzzing of model loading: mutated fixture files must end in success with a usable model
 * or in a BadInputError (exit code 2) — never another exception, a hang or an unbounded allocation.
 * FUZZ_CASES (per mutation kind) raises the count for bench runs.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../src/errors.js';
import { modelBytes } from '../src/export/write-model.js';
import { onnx } from '../src/import/onnx-schema.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { Rng } from '../src/data/random.js';
import { createSession } from '../src/verify/onnx-runtime.js';
import { modelPath, wasm } from './helpers/fixtures.js';

const CASES = Number(process.env.FUZZ_CASES ?? 12);
const dir = mkdtempSync(join(tmpdir(), 'nad-fuzz-'));
const base = new Uint8Array(readFileSync(modelPath('wrn16_1')));
const counts: Record<string, { ok: number; refused: number }> = {};

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
  'wrong dtype': (rng) => {
    const m = decoded();
    const t = m.graph!.initializer![rng.int(m.graph!.initializer!.length)]!;
    t.dataType = [7, 11, 16, 0, 99][rng.int(5)]!;
    return encode(m);
  },
};

async function attempt(bytes: Uint8Array, path: string): Promise<'ok' | 'refused'> {
  writeFileSync(path, bytes);
  let model: TrainableModel | undefined;
  try {
    model = TrainableModel.fromFile(path);
    const session = await createSession(modelBytes(model.source), path);
    await session.release();
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
    });
  }
});
