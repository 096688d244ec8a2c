/** Hostile and broken models: one-line errors, exit code 2, nothing written. */
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { onnx } from '../src/onnx/onnx-schema.js';
import { cli, isOneLineError } from './helpers/cli.js';
import { modelPath, MODELS } from './helpers/fixtures.js';
import { buildModel } from './helpers/onnx-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'nad-bad-'));

async function expectBadInput(args: string[], pattern: RegExp): Promise<void> {
  const r = await cli(args);
  expect(r.code, r.stderr).toBe(2);
  expect(isOneLineError(r.stderr), r.stderr).toBe(true);
  expect(r.stderr).toMatch(pattern);
  expect(r.stdout).toBe('');
}

/** The external-data fixture with its location rewritten to `location`, in a fresh folder. */
function externalWith(location: string, edit?: (t: onnx.TensorProto) => void): string {
  const sub = mkdtempSync(join(dir, 'ext-'));
  const m = onnx.ModelProto.decode(readFileSync(join(MODELS, 'external', 'wrn16_1_opset18.onnx')));
  for (const t of m.graph!.initializer!) {
    for (const kv of t.externalData ?? []) if (kv.key === 'location') kv.value = location;
    edit?.(t);
  }
  copyFileSync(join(MODELS, 'external', 'wrn16_1_opset18.onnx.data'), join(sub, 'wrn16_1_opset18.onnx.data'));
  const p = join(sub, 'model.onnx');
  writeFileSync(p, onnx.ModelProto.encode(m).finish());
  return p;
}

describe('bad models are refused cleanly', () => {
  it('missing file', async () => await expectBadInput(['inspect', join(dir, 'none.onnx')], /none\.onnx: cannot read model/));

  it('truncated file', async () => {
    const p = join(dir, 'truncated.onnx');
    writeFileSync(p, readFileSync(modelPath('wrn16_1')).subarray(0, 5000));
    await expectBadInput(['inspect', p], /truncated\.onnx: /);
  });

  it('random bytes', async () => {
    const p = join(dir, 'random.onnx');
    let s = 12345;
    writeFileSync(p, Uint8Array.from({ length: 4096 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 255));
    await expectBadInput(['inspect', p], /random\.onnx: /);
  });

  it('unknown op: names the op, the node and the supported ops', async () => {
    const p = join(dir, 'unknown-op.onnx');
    writeFileSync(p, buildModel({ inputs: [{ name: 'x', dims: [1, 1, 4, 4] }], outputs: ['y'], nodes: [{ op: 'Einsum', inputs: ['x'], outputs: ['y'] }] }));
    await expectBadInput(['inspect', p], /node 'n0' has unsupported op type 'Einsum' \(supported: .*Conv/);
  });

  it('one tensor used directly as a BatchNorm parameter and a running statistic: refused, naming both roles', async () => {
    const p = join(dir, 'tied-bn.onnx');
    writeFileSync(p, buildModel({
      inputs: [{ name: 'x', dims: [1, 2, 4, 4] }], outputs: ['y'],
      nodes: [{ op: 'BatchNormalization', inputs: ['x', 'ones', 'zeros', 'zeros', 'ones'], outputs: ['y'] }],
      inits: [{ name: 'ones', dims: [2], float: [1, 1] }, { name: 'zeros', dims: [2], float: [0, 0] }],
    }));
    await expectBadInput(['inspect', p], /tied-bn\.onnx: node 'n0': initializer 'zeros' is used both as a bn-bias and a bn-mean/);
  });

  it('external data pointing outside the folder', async () => {
    await expectBadInput(['inspect', externalWith('../../etc/passwd')], /leaves the model's folder/);
    await expectBadInput(['inspect', externalWith('/etc/passwd')], /leaves the model's folder/);
  });

  it('external data through a symlink leaving the folder', async () => {
    const p = externalWith('link.data');
    symlinkSync('/etc/hostname', join(p, '..', 'link.data'));
    await expectBadInput(['inspect', p], /resolves outside the model's folder/);
  });

  it('external data past the end of its file', async () => {
    const p = externalWith('wrn16_1_opset18.onnx.data', (t) => {
      for (const kv of t.externalData ?? []) if (kv.key === 'offset') kv.value = String(10_000_000);
    });
    await expectBadInput(['inspect', p], /past the end of/);
  });

  it('unknown flag: rejected with exit code 2', async () => {
    const r = await cli(['inspect', modelPath('wrn16_1'), '--jsn']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--jsn'/);
  });
});

describe('inspect', () => {
  it('--json carries input, output, ops, parameters and taps', async () => {
    const r = await cli(['inspect', modelPath('wrn16_1'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.input.shape.slice(1)).toEqual([1, 32, 32]);
    expect(j.output.shape[1]).toBe(10);
    expect(j.ops.Conv).toBe(15);
    expect(j.ops.BatchNormalization).toBe(7);
    // Independently: every initializer's element count, less the BatchNormalization running statistics.
    const m = onnx.ModelProto.decode(readFileSync(modelPath('wrn16_1')));
    const stats = new Set(m.graph!.node!.filter((n) => n.opType === 'BatchNormalization').flatMap((n) => [n.input![3], n.input![4]]));
    const count = m.graph!.initializer!.filter((t) => !stats.has(t.name!))
      .reduce((a, t) => a + t.dims!.reduce((x: number, d) => x * Number(d), 1), 0);
    expect(j.parameters).toBe(count);
    expect(j.taps.map((t: { shape: number[] }) => t.shape)).toEqual([[16, 32, 32], [32, 16, 16], [64, 8, 8]]);
  });
});
