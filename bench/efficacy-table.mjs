// Renders bench/results/efficacy/*.json (one cell each, written by bench/efficacy.sh) into the efficacy table
// of bench/README.md, between the markers <!-- efficacy-table --> and <!-- /efficacy-table -->.
// Per fixture: each method's acc_all / ASR after cleaning per seed, the acc_all drop, and whether the goal
// (ASR <= 2 %, acc_all drop <= 2 points against the model before) is met; the best method is the one whose
// worst seed is nearest the goal (distance = ASR points above 2 + acc_all points of drop above 2).
//   node bench/efficacy-table.mjs            (rewrites bench/README.md)
//   node bench/efficacy-table.mjs --print    (prints the table only)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DIR = 'bench/results/efficacy';
const cells = readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(DIR, f), 'utf8')));
const distance = (c) => Math.max(0, (c.after.asr ?? 100) - 2) + Math.max(0, c.acc_all_drop - 2);
// The warnings of a cell whose default learning rate diverged and was divided by 10 (or 100) by `clean`.
const restarts = (c) => (c.warnings ?? []).filter((w) => /restarted it from its start/.test(w));
const f = (v) => (v === null || v === undefined ? '–' : v.toFixed(1));
const byFixture = new Map();
for (const c of cells) {
  if (!byFixture.has(c.fixture)) byFixture.set(c.fixture, new Map());
  const m = byFixture.get(c.fixture);
  if (!m.has(c.method)) m.set(c.method, []);
  m.get(c.method).push(c);
}
const out = [];
const machines = [...new Set(cells.map((c) => `${c.machine.cpu}, ${c.machine.avx512 ? 'AVX-512' : 'no AVX-512'}, ${c.machine.cores} cores`))];
out.push(`Cells: ${cells.length}. Machine${machines.length > 1 ? 's' : ''}: ${machines.join('; ') || '–'}. Each cell: \`clean\` with the method's defaults on 5 % of CIFAR-10's training set (2,500 images), measured on the 10,000 test images by onnxruntime; acc_all / ASR after cleaning, the drop of acc_all against the model before, the plain fine-tuning baseline (for NAD its teacher, made by the method named), seconds. Goal: ASR ≤ 2 % and drop ≤ 2 points.`);
out.push('');
for (const [fixture, methods] of [...byFixture].sort()) {
  const any = [...methods.values()][0][0];
  out.push(`**${fixture}** (before: acc_all ${f(any.before.acc_all)}, ASR ${f(any.before.asr)})`);
  out.push('');
  out.push('| method | seed | acc_all / ASR after | acc_all drop | baseline or teacher acc_all / ASR (its method) | goal met | seconds |');
  out.push('| --- | --- | --- | --- | --- | --- | --- |');
  let best;
  for (const [method, list] of [...methods].sort()) {
    for (const c of list.sort((a, b) => a.seed - b.seed)) {
      out.push(`| ${method} | ${c.seed} | ${c.failed ? `no output (${c.failed.error.replace(/^nad-onnx: /, '')}); the model stays ${f(c.after.acc_all)} / ${f(c.after.asr)}` : `${f(c.after.acc_all)} / ${f(c.after.asr)}`} | ${f(c.acc_all_drop)} | ${c.baseline ? `${f(c.baseline.acc_all)} / ${f(c.baseline.asr)} (${c.baseline_method === 'output' ? 'ft = output' : c.baseline_method})` : '–'} | ${c.goal.met ? 'yes' : 'no'} | ${Math.round(c.seconds)}${(c.machine.load_at_start ?? 0) > 1 ? '*' : ''}${c.machine.threads === 1 ? ' (1 thread)' : ''}${c.resumed_attempts ? `, resumed (${c.resumed_attempts + 1} attempts)` : ''}${c.note ? ' †' : ''}${restarts(c).length ? ' ‡' : ''} |`);
    }
    const worst = Math.max(...list.map(distance));
    if (!best || worst < best.worst) best = { method, worst, seeds: list.length };
  }
  out.push('');
  out.push(`Best here: **${best.method}**, worst seed ${best.worst === 0 ? 'meets the goal' : `${f(best.worst)} points from the goal`} (${best.seeds} seed${best.seeds > 1 ? 's' : ''}).`);
  out.push('');
}
// The default is the method with the best worst case over every fixture (issue "Defences beyond NAD (3 of 3)").
const fixtures = [...byFixture.keys()];
const methods = [...new Set(cells.map((c) => c.method))].sort();
out.push('**Worst case over the fixtures** (distance to the goal of the method\'s worst cell, in points; sorted by fixtures covered, then by that distance, then by cost: the median seconds of its cells)');
out.push('');
out.push('| method | fixtures covered | cells | worst distance | worst on | median seconds |');
out.push('| --- | --- | --- | --- | --- | --- |');
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const ranked = methods.map((m) => {
  const mine = cells.filter((c) => c.method === m);
  const worst = mine.reduce((w, c) => (distance(c) > w.d ? { d: distance(c), on: `${c.fixture} seed ${c.seed}` } : w), { d: -1, on: '' });
  return { m, covered: new Set(mine.map((c) => c.fixture)).size, n: mine.length, worst, secs: median(mine.map((c) => c.seconds)) };
}).sort((a, b) => (b.covered - a.covered) || (a.worst.d - b.worst.d) || (a.secs - b.secs));
for (const r of ranked) out.push(`| ${r.m} | ${r.covered} of ${fixtures.length} | ${r.n} | ${f(r.worst.d)} | ${r.worst.on} | ${Math.round(r.secs)} |`);
out.push('');
for (const c of cells.filter((x) => x.note)) out.push(`† ${c.fixture} ${c.method} seed ${c.seed}: ${c.note}`, '');
for (const c of cells.filter((x) => restarts(x).length)) out.push(`‡ ${c.fixture} ${c.method} seed ${c.seed}: ${restarts(c).map((w) => w.replace(/^warning: /, '')).join('; ')}`, '');
if (cells.some((c) => (c.machine.load_at_start ?? 0) > 1)) out.push('\\* timed beside other jobs (load average above 1 at the start): its seconds overstate the cost on a quiet machine.');
const table = out.join('\n');
if (process.argv.includes('--print')) {
  console.log(table);
} else {
  const readme = readFileSync('bench/README.md', 'utf8');
  const start = '<!-- efficacy-table -->', end = '<!-- /efficacy-table -->';
  const i = readme.indexOf(start), j = readme.indexOf(end);
  if (i < 0 || j < 0) throw new Error('bench/README.md has no efficacy-table markers');
  writeFileSync('bench/README.md', readme.slice(0, i + start.length) + '\n' + table + '\n' + readme.slice(j));
  console.log(`bench/README.md: ${cells.length} cells`);
}
