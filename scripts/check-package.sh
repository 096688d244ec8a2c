#!/usr/bin/env bash
# Packaging check (CI runs it right after the tests): `npm pack` this repository, install the tarball into an
# empty project the way the README tells a CPU-only or offline user to (ONNXRUNTIME_NODE_INSTALL=skip, nothing
# but the npm registry), and check what a user gets: the bin, `inspect` on a committed fixture, and the library
# API (its exports, `inspect`, a 1 + 1-epoch `clean` on the quick-start fixture). Catches a file missing from
# `files`, a dev-only import at run time, or a broken bin.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"
TARBALL=$(npm pack --silent --pack-destination "$WORK" | tail -1)
mkdir "$WORK/project"
cd "$WORK/project"
npm init -y > /dev/null
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error "$WORK/$TARBALL" > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; exit 1; }
export ROOT
node --input-type=module <<'JS'
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const root = process.env.ROOT;
const results = [];
const check = async (name, f) => {
  try { await f(); results.push([name, true]); console.log(`ok    ${name}`); }
  catch (e) { results.push([name, false]); console.log(`FAIL  ${name}: ${e.message.split('\n')[0]}`); }
};
const assert = (cond, what) => { if (!cond) throw new Error(what); };
const bin = (args) => execFileSync('npx', ['--no-install', 'nad-onnx', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

await check('npx nad-onnx --version prints the package version', () => assert(bin(['--version']).trim() === version, 'wrong version'));
await check('nad-onnx inspect --json on a committed fixture: its input and three taps', () => {
  const r = JSON.parse(bin(['inspect', join(root, 'fixtures/models/wrn16_1.onnx'), '--json']));
  assert(JSON.stringify(r.input.shape.slice(1)) === '[1,32,32]', `input ${JSON.stringify(r.input)}`);
  assert(r.taps.length === 3 && r.taps[2].shape.join('x') === '64x8x8', `taps ${JSON.stringify(r.taps)}`);
});
const lib = await import('nad-onnx');
await check('import("nad-onnx") exports exactly the documented API', () => {
  const names = Object.keys(lib).sort().join(',');
  assert(names === 'BadInputError,DEFAULT_METHOD,ExitCode,GateError,GateRejection,METHODS,NadError,clean,evaluate,inspect,scan', names);
});
await check('library inspect gives the taps', async () => {
  const r = await lib.inspect(join(root, 'fixtures/models/wrn16_1_nad.onnx'));
  assert(r.taps.length === 3, JSON.stringify(r.taps));
});
await check('library clean (1 + 1 epochs, quick-start fixture) writes a verified model and lowers the ASR', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'nad-pack-')), 'clean.onnx');
  const r = await lib.clean({ model: join(root, 'fixtures/models/wrn16_1_nad.onnx'), data: join(root, 'fixtures/data/fmnist-clean'),
    test: join(root, 'fixtures/data/fmnist-test.npz'), trigger: 'grid', target: 0, method: 'nad', teacherEpochs: 1, epochs: 1, lrDropEpoch: 1, out });
  assert(existsSync(out) && r.output.written, 'no output');
  assert(r.method === 'nad' && r.before.asr > 99 && r.after.asr < r.before.asr / 2, `asr ${r.before.asr} -> ${r.after.asr}`);
  assert(r.export_check.max_abs_logit_diff < 1e-3, `export check ${r.export_check.max_abs_logit_diff}`);
});
await check('library errors are typed with exit code 2', async () => {
  const e = await lib.inspect(join(root, 'no-such-model.onnx')).catch((x) => x);
  assert(e instanceof lib.BadInputError && e.exitCode === 2, String(e));
});
const failed = results.filter(([, ok]) => !ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
JS
