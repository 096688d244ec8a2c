/** Human-readable tables for `eval` and `clean`. */
import { baselineLabel, methodLabel, type CleanReport } from '../report/clean-report.js';
import type { Metrics } from '../verify/metrics.js';
import { engineText } from '../report/engine-text.js';

const f = (v: number | null, digits = 2) => (v === null ? '-' : v.toFixed(digits));

export function formatMetrics(m: Metrics): string {
  return [
    `images         ${m.n}`,
    `acc            ${f(m.acc)} %   (clean, non-target images)`,
    `acc_all        ${f(m.acc_all)} %   (clean, all images)`,
    `target_recall  ${f(m.target_recall)} %`,
    `asr            ${f(m.asr)} %   (triggered non-target images -> target)`,
    `ra             ${f(m.ra)} %   (triggered images -> true label)`,
  ].join('\n');
}

export function formatCleanReport(r: CleanReport): string {
  const rows: [string, Metrics, number | null][] = [['before', r.before, null]];
  if (r.teacher && r.method !== 'ft') rows.push([baselineLabel(r), r.teacher, r.der.teacher]);
  for (const st of r.stages ?? []) rows.push([`${methodLabel(st.method)} (stage)`, st.metrics, st.der]);
  rows.push([`${methodLabel(r.method)} (output)`, r.after, r.der.after]);
  const lines = [
    `${'model'.padEnd(24)}${'acc'.padStart(8)}${'acc_all'.padStart(9)}${'asr'.padStart(8)}${'ra'.padStart(8)}${'DER'.padStart(8)}`,
  ];
  for (const [name, m, d] of rows) {
    lines.push(`${name.padEnd(24)}${f(m.acc).padStart(8)}${f(m.acc_all).padStart(9)}${f(m.asr).padStart(8)}${f(m.ra).padStart(8)}${f(d).padStart(8)}`);
  }
  lines.push('');
  lines.push(`test images ${r.data.test.n}, clean images ${r.data.train.n}, seed ${r.seed}, engine ${engineText(r)}, ${r.timings.total_s!.toFixed(1)} s`);
  lines.push(r.output.written ? `wrote ${r.output.path} (sha256 ${r.output.sha256!.slice(0, 16)}…)` : `nothing written: ${r.gates.failed.join('; ')}`);
  return lines.join('\n');
}
