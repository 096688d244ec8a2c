// Turns a `clean --report` into one efficacy-table cell (bench/efficacy.sh): the figures the table shows,
// whether the goal (ASR <= 2 %, acc_all drop <= 2 points against the model before cleaning) is met, and the machine.
//   node bench/efficacy-cell.mjs <report.json> <fixture> <method> <seed> <flags> <load>
//   node bench/efficacy-cell.mjs --failed <eval.json> <stderr file> <exit code> <seconds> <fixture> <method> <seed> <flags> <load>
// The second form records a run that ended without a model (diverged, or refused by a gate): the model stays
// as it was, measured by `eval`.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
const pick = (m) => (m ? { acc: m.acc, acc_all: m.acc_all, asr: m.asr, ra: m.ra } : null);
const machine = (threads, load) => ({
  cpu: cpus()[0]?.model ?? 'unknown', avx512: /\bavx512f\b/.test(cpuinfo), cores: cpus().length, threads, load_at_start: load === undefined ? null : Number(load),
});
const goal = (after, drop) => ({ asr_max: 2, acc_all_drop_max: 2, met: after.asr !== null && after.asr <= 2 && drop <= 2 });

if (process.argv[2] === '--failed') {
  const [, beforePath, errPath, status, seconds, fixture, method, seed, flags, load] = process.argv.slice(2);
  const before = pick(JSON.parse(readFileSync(beforePath, 'utf8')));
  const error = readFileSync(errPath, 'utf8').trim().split('\n').pop();
  console.log(JSON.stringify({
    fixture, method, seed: Number(seed), flags: flags.trim(), failed: { exit_code: Number(status), error },
    before, after: before, baseline: null, baseline_method: null, stages: null, acc_all_drop: 0,
    goal: { ...goal(before, 0), met: false }, seconds: Number(seconds),
    machine: machine(Number(/--threads (\d+)/.exec(flags)?.[1] ?? 2), load),
  }, null, 1));
} else {
  const [reportPath, fixture, method, seed, flags, load] = process.argv.slice(2);
  const r = JSON.parse(readFileSync(reportPath, 'utf8'));
  const drop = r.before.acc_all - r.after.acc_all;
  console.log(JSON.stringify({
    fixture, method, seed: Number(seed), flags: flags.trim(),
    before: pick(r.before), after: pick(r.after), baseline: pick(r.teacher), baseline_method: r.baseline?.method ?? null,
    stages: r.stages?.map((s) => ({ method: s.method, ...pick(s.metrics) })) ?? null,
    acc_all_drop: drop,
    goal: goal(r.after, drop),
    // e.g. a default learning rate that diverged and was lowered: the table marks such cells.
    warnings: r.warnings ?? [],
    // A cell resumed from its checkpoint (bench/efficacy.sh) adds its stopped attempts' seconds.
    seconds: r.timings.total_s + Number(process.env.PRIOR_SECONDS ?? 0), resumed_attempts: Number(process.env.PRIOR_ATTEMPTS ?? 0), timings: r.timings, peak_rss_mb: r.timings.peak_rss_mb,
    // What the table's † footnote says about how the cell was made (e.g. a teacher taken from another cell).
    ...(process.env.CELL_NOTE ? { note: process.env.CELL_NOTE } : {}),
    parameters: r.parameters, engine: r.engine, train_images: r.data.train.n, test_images: r.data.test.n,
    machine: machine(r.device?.threads ?? 2, load),
    tool_version: r.tool.version,
  }, null, 1));
}
