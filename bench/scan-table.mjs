// Renders bench/results/scan/*.json (bench/scan.sh) into the scan table of bench/README.md, between
// <!-- scan-table --> and <!-- /scan-table -->.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DIR = 'bench/results/scan';
const runs = readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(DIR, f), 'utf8')))
  .sort((a, b) => a.model.localeCompare(b.model) || a.budget.localeCompare(b.budget));
const machines = [...new Set(runs.map((r) => `${r.machine.cpu}, ${r.machine.avx512 ? 'AVX-512' : 'no AVX-512'}, ${r.machine.cores} cores`))];
const idx = (k) => k.anomaly_index.toFixed(2);
const lines = [
  `Machine${machines.length > 1 ? 's' : ''}: ${machines.join('; ')}. \`nad-onnx scan\` on 1,000 of the 2,500 clean CIFAR-10 images (\`--ratio 0.05\`), target of every attack fixture = class 0. Budget: default = 20 epochs per class (32 Adam steps of batch 32 each) with the early stop; double = 40. Neural Cleanse: class 0's anomaly index and mask L1 beside the median's; second signal: the channel mask after the deepest tap (class 0's index, channels needed against the median).`,
  '',
  '| model | budget | flagged (NC) | class 0: index, mask L1 (median) | max index | flagged (feature) | class 0: feature index, channels (median) | seconds |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...runs.map((r) => {
    const s = r.secondary;
    const sec = s ? `${s.flagged.join(', ') || 'none'} | ${s.classes[0].score.toFixed(2)}, ${s.channels_l1[0].toFixed(1)} (${s.median.toFixed(1)})` : '– | –';
    return `| ${r.model} | ${r.budget} | ${r.flagged.join(', ') || 'none'} | ${idx(r.classes[0])}, ${r.classes[0].mask_l1.toFixed(1)} (${r.median_mask_l1.toFixed(1)}) | ${r.max_anomaly_index.toFixed(2)} | ${sec} | ${Math.round(r.seconds)} |`;
  }),
];
// PyTorch's run of the same optimisation (bench/reference/nc_reference.py, bench/results/scan-reference/<model>-<budget>.json)
// beside ours: the same flagged classes, and each class's anomaly index within 20 % (the bar).
const REF = 'bench/results/scan-reference';
for (const f of readdirSync(REF).filter((x) => x.endsWith('.json')).sort()) {
  const ref = JSON.parse(readFileSync(join(REF, f), 'utf8'));
  const ours = runs.find((r) => `${r.model}-${r.budget}.json` === f);
  if (!ours) continue;
  const rel = ref.classes.map((c, k) => {
    const a = ours.classes[k].anomaly_index, b = c.anomaly_index;
    return Math.max(a, b) < 1 ? 0 : Math.abs(a - b) / Math.max(a, b);
  });
  const same = JSON.stringify(ref.flagged) === JSON.stringify(ours.flagged);
  lines.push('', `PyTorch reference on ${ours.model} (${ours.budget}): flagged ${ref.flagged.join(', ') || 'none'} (nad-onnx: ${ours.flagged.join(', ') || 'none'}${same ? ', the same' : ', DIFFERENT'}); anomaly indices ${ref.classes.map((c) => c.anomaly_index.toFixed(2)).join(' / ')} against nad-onnx's ${ours.classes.map((c) => c.anomaly_index.toFixed(2)).join(' / ')} (classes 0–${ref.classes.length - 1}); largest relative difference of an index of 1 or more: ${(100 * Math.max(...rel)).toFixed(1)} %; PyTorch on ${ref.settings?.threads ?? "?"} thread(s).`);
}
const readme = readFileSync('bench/README.md', 'utf8');
const start = '<!-- scan-table -->', end = '<!-- /scan-table -->';
const i = readme.indexOf(start), j = readme.indexOf(end);
if (i < 0 || j < 0) throw new Error('bench/README.md has no scan-table markers');
writeFileSync('bench/README.md', readme.slice(0, i + start.length) + '\n' + lines.join('\n') + '\n' + readme.slice(j));
console.log(`bench/README.md: ${runs.length} scan runs`);
