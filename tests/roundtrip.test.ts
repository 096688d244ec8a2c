/** Export fidelity: untouched files round-trip byte for byte; training changes only weights and provenance. */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { editModelBytes, modelBytes, sha256 } from '../src/export/write-model.js';
import { provenanceMetadata } from '../src/export/provenance.js';
import { onnx } from '../src/onnx/onnx-schema.js';
import { TrainableModel } from '../src/import/trainable-model.js';
import { engineSteps } from './helpers/engine-steps.js';
import { createSession, nhwcToNchw, runModel } from '../src/verify/onnx-runtime.js';
import { FIXTURE_MODELS, fmnist, maxAbsDiff, modelPath, wasm } from './helpers/fixtures.js';
import { concatBytes, lengthDelimited } from '../src/onnx/protobuf-wire.js';

beforeAll(wasm);

const decode = (b: Uint8Array) => onnx.ModelProto.toObject(onnx.ModelProto.decode(b), { longs: String, bytes: Array });

describe('round trip', () => {
  for (const name of FIXTURE_MODELS) {
    it(`${name}: re-encoding without changes is byte-identical`, () => {
      const src = new Uint8Array(readFileSync(modelPath(name)));
      const out = editModelBytes(src, { tensors: new Map(), metadata: [] });
      expect(Buffer.compare(Buffer.from(out), Buffer.from(src))).toBe(0);
    });
  }

  it('fields the schema does not know survive an edit, byte for byte', () => {
    const src = new Uint8Array(readFileSync(modelPath('wrn16_1')));
    // An unknown field (number 99, a string) appended to the ModelProto.
    const unknown = concatBytes(lengthDelimited(99, new TextEncoder().encode('future-field')));
    const withUnknown = concatBytes([src, unknown]);
    const model = TrainableModel.fromFile(modelPath('wrn16_1'));
    const [name, w] = [...model.exportWeights()][0]!;
    const edited = editModelBytes(withUnknown, { tensors: new Map([[name, new Uint8Array(w.map((v) => v + 1).buffer)]]) });
    expect(Buffer.from(edited).includes(Buffer.from(unknown))).toBe(true);
    model.dispose();
  });

  it('after training, only initializer values and provenance change', async () => {
    const model = TrainableModel.fromFile(modelPath('wrn16_1_unfused'));
    const d = fmnist('train', 16);
    const x = tf.tensor4d(d.x, [d.n, d.h, d.w, d.c]);
    const y = tf.tensor1d(d.y, 'int32');
    await engineSteps(model, 'tfjs', { nhwc: d.x, nchw: nhwcToNchw(d.x, d.n, d.h, d.w, d.c), labels: d.y, n: d.n }, [0.05], { momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
    const weights = model.exportWeights();
    const meta = provenanceMetadata('nad', { epochs: 1 }, sha256(model.source.bytes));
    const out = modelBytes(model.source, weights, meta);
    const a = decode(model.source.bytes), b = decode(out);
    // Everything outside the graph's initializers and metadata_props is equal.
    const strip = (m: ReturnType<typeof decode>) => ({ ...m, metadataProps: undefined, graph: { ...m.graph, initializer: undefined } });
    expect(strip(b)).toEqual(strip(a));
    expect(b.metadataProps).toEqual(meta.map(([key, value]) => ({ key, value })));
    // Initializers: same names, dims and types; trained ones changed, running statistics too.
    const ia = a.graph.initializer as { name: string; dims: string[]; dataType: number; rawData: number[] }[];
    const ib = b.graph.initializer as typeof ia;
    expect(ib.map((t) => [t.name, t.dims, t.dataType])).toEqual(ia.map((t) => [t.name, t.dims, t.dataType]));
    let changed = 0;
    for (let i = 0; i < ia.length; i++) if (ia[i]!.rawData.some((v, j) => v !== ib[i]!.rawData[j])) changed++;
    expect(changed).toBe(weights.size);
    // Written weights equal the trained values exactly.
    for (const t of ib) {
      const w = weights.get(t.name);
      if (w) expect(Buffer.from(Uint8Array.from(t.rawData)).equals(Buffer.from(w.buffer, w.byteOffset, w.byteLength))).toBe(true);
    }
    // Deterministic: the same weights give the same bytes.
    expect(Buffer.from(modelBytes(model.source, weights, meta)).equals(Buffer.from(out))).toBe(true);
    x.dispose(); y.dispose(); model.dispose();
  });

  it('a model with external data is written self-contained and computes the same logits', async () => {
    const ext = TrainableModel.fromFile(modelPath('external/wrn16_1_opset18'));
    expect(ext.source.external.size).toBeGreaterThan(0);
    const out = modelBytes(ext.source);
    const decoded = onnx.ModelProto.decode(out);
    for (const t of decoded.graph!.initializer!) {
      expect(t.dataLocation ?? 0).toBe(0);
      expect(t.externalData ?? []).toHaveLength(0);
    }
    const d = fmnist('test', 16);
    const xs = nhwcToNchw(d.x, d.n, d.h, d.w, d.c);
    const r1 = await runModel(await createSession(out, 'inlined'), xs, [d.n, d.c, d.h, d.w]);
    const r2 = await runModel(await createSession(modelBytes(TrainableModel.fromFile(modelPath('wrn16_1')).source), 'plain'), xs, [d.n, d.c, d.h, d.w]);
    expect(maxAbsDiff(r1.data, r2.data)).toBeLessThan(1e-5);
    ext.dispose();
  });
});
