// Issue "Defences beyond NAD (3 of 3)", budgets: with its defaults every method finishes a 2,500-image
// WRN-16-1 job within 30 minutes, and the default method a PreAct-ResNet-18 job within 75, on 2 cores,
// evaluations included.
//   node bench/budget.mjs [--full] [--preact] [--methods ft,ft-sam,fst,nad,nad-sau,sau,anp,rnp] [--threads n]
// Each method runs `clean` on 5 % of CIFAR-10's training set with the trigger and all 10,000 test images,
// as bench/efficacy.sh does. Without --full, the loops are shortened (a few epochs, 200 ANP iterations) and
// the full run is projected: the measured total, minus the measured loop entries, plus each loop's mean
// entry (the first included, so session set-up counts in) times the default count. The fine-tuning baseline
// the other methods also train is the `ft` run itself: they run with --no-baseline and get its training and
// its evaluation added. A run that diverges and restarts at a lower rate costs more than projected (its
// restarted epochs): the report's warnings are printed. Run it on a quiet machine: it times.
// Needs ../shared/datasets/cifar10-jpg.tar.gz; --preact needs Debian's python3-torch (to export the model).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMachine } from './machine.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const full = args.includes('--full'), preact = args.includes('--preact');
const threads = opt('--threads', '2');
const CACHE = process.env.CIFAR_DIR ?? '/tmp/nad-onnx-cifar10';

// Per method: the flags that shorten its loops, and each loop's default count of report entries (epochs;
// ANP logs one entry per 100 iterations). The phases are the report's `losses` keys.
const PLANS = {
  ft: { short: ['--epochs', '2'], phases: { ft: 10 } },
  'ft-sam': { short: ['--epochs', '2'], phases: { 'ft-sam': 20 } },
  fst: { short: ['--epochs', '2'], phases: { fst: 10 } },
  nad: { short: ['--teacher-epochs', '2', '--epochs', '2'], phases: { teacher: 10, nad: 20 } },
  // NAD with an SAU teacher (bench/efficacy.sh's nad-sau): the teacher's entries are SAU epochs.
  'nad-sau': { method: ['--method', 'nad', '--teacher-method', 'sau'], short: ['--teacher-epochs', '2', '--epochs', '2'], phases: { teacher: 10, nad: 20 } },
  sau: { short: ['--epochs', '2'], phases: { sau: 10 } },
  anp: { short: ['--anp-iterations', '200'], phases: { anp: 20 } },
  // RNP's unlearning stops at its own criterion: it runs as it is; its recovering is shortened.
  rnp: { short: ['--epochs', '2'], phases: { recover: 20 } },
};
const methods = (opt('--methods', preact ? 'ft' : 'ft,ft-sam,fst,nad,nad-sau,sau,anp,rnp')).split(',');
for (const m of methods) if (!PLANS[m]) { console.error(`bench/budget.mjs: --methods: no plan for '${m}' (have ${Object.keys(PLANS).join(', ')})`); process.exit(2); }

if (!existsSync(join(CACHE, 'train'))) {
  mkdirSync(CACHE, { recursive: true });
  execFileSync('tar', ['xzf', join(ROOT, '..', 'shared', 'datasets', 'cifar10-jpg.tar.gz'), '-C', CACHE]);
}
const fixture = preact ? 'preact18_sig' : 'wrn16_1_badnets';
const meta = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'cifar', `${fixture}.json`), 'utf8'));
let model = join(ROOT, 'fixtures', 'cifar', `${fixture}.onnx`);
if (preact) {
  model = join(ROOT, 'bench', 'out', `${fixture}.onnx`);
  mkdirSync(dirname(model), { recursive: true });
  if (!existsSync(model)) execFileSync('/usr/bin/python3', ['export_preact18.py', `cifar/${fixture}.pt`, model], { cwd: join(ROOT, 'fixtures'), stdio: 'inherit' });
}
const budgetMin = preact ? 75 : 30;

function clean(method, extra) {
  const flags = PLANS[method].method ?? ['--method', method];
  const report = join(ROOT, 'bench', 'out', `budget-${fixture}-${method}.report.json`);
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'clean', model, '--data', join(CACHE, 'train'), '--ratio', '0.05',
    '--test', join(CACHE, 'test'), '--trigger', meta.trigger, '--target', String(meta.target), ...flags, '--seed', '0', '--threads', threads,
    ...extra, '--out', join(ROOT, 'bench', 'out', `budget-${fixture}-${method}.onnx`), '--report', report, '--quiet'], { encoding: 'utf8' });
  if (r.status !== 0) { console.error(`bench/budget.mjs: ${method}: clean exited ${r.status}: ${r.stderr.trim().split('\n').pop()}`); process.exit(1); }
  return JSON.parse(readFileSync(report, 'utf8'));
}

const machine = describeMachine();
console.log(`budget bench, ${fixture}, 2,500 training images, 10,000 test images, --threads ${threads}, ${full ? 'full runs' : 'shortened runs, projected'}`);
console.log(`machine: ${machine.text}`);
const sum = (l) => l.reduce((a, e) => a + e.seconds, 0);
let ft;
const rows = [];
for (const m of ['ft', ...methods.filter((x) => x !== 'ft')]) {
  if (m !== 'ft' && !methods.includes(m)) continue;
  const plan = PLANS[m];
  // NAD's baseline is its own teacher, so it trains no ft baseline.
  const own = m === 'ft' || m.startsWith('nad') ? [] : ['--no-baseline'];
  const r = clean(m, [...(full ? [] : plan.short), ...(full ? [] : own)]);
  let projected = r.timings.total_s;
  const loops = [];
  if (!full) {
    for (const [phase, count] of Object.entries(plan.phases)) {
      const l = r.losses[phase];
      if (!l?.length) { console.error(`bench/budget.mjs: ${m}: the report has no '${phase}' loss history`); process.exit(1); }
      projected += (sum(l) / l.length) * count - sum(l);
      loops.push(`${phase} ${l.length} → ${count} entries at ${(sum(l) / l.length).toFixed(1)} s`);
    }
    if (own.length) projected += ft.trainSeconds + ft.evalSeconds;
  }
  if (m === 'ft') ft = { trainSeconds: (sum(r.losses.ft) / r.losses.ft.length) * (full ? r.losses.ft.length : PLANS.ft.phases.ft), evalSeconds: r.timings.eval_after_s };
  if (m !== 'ft' && !methods.includes(m)) continue;
  rows.push({ m, measured: r.timings.total_s, projected, loops, warnings: r.warnings ?? [], rss: r.timings.peak_rss_mb });
}
console.log(`| method | measured s | ${full ? '' : 'loops (measured → default entries) | projected full run s | '}minutes | budget ${budgetMin} min | peak RSS MB |`);
console.log(`| --- | --- | ${full ? '' : '--- | --- | '}--- | --- | --- |`);
for (const r of rows) {
  if (!methods.includes(r.m)) continue;
  const min = r.projected / 60;
  console.log(`| ${r.m} | ${r.measured.toFixed(0)} | ${full ? '' : `${r.loops.join('; ')}${r.m !== 'ft' && !r.m.startsWith('nad') ? '; + the ft baseline' : ''} | ${r.projected.toFixed(0)} | `}${min.toFixed(1)} | ${min <= budgetMin ? 'within' : 'OVER'} | ${r.rss.toFixed(0)} |`);
  for (const w of r.warnings) console.log(`  ${r.m}: ${w}`);
}
