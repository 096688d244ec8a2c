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
const readme = readFileSync('bench/README.md', 'utf8');
const start = '<!-- scan-table -->', end = '<!-- /scan-table -->';
const i = readme.indexOf(start), j = readme.indexOf(end);
if (i < 0 || j < 0) throw new Error('bench/README.md has no scan-table markers');
writeFileSync('bench/README.md', readme.slice(0, i + start.length) + '\n' + lines.join('\n') + '\n' + readme.slice(j));
console.log(`bench/README.md: ${runs.length} scan runs`);
