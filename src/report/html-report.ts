/**
 * A self-contained HTML page for a clean report: the before / fine-tuning / NAD table, loss curves per
 * epoch (inline SVG) and attention maps per tap (PNG data URIs), no external resources.
 */
import { engineText } from './engine-text.js';
import { pngDataUri as png } from './png.js';
import { baselineLabel, methodLabel, type CleanReport } from './clean-report.js';
import type { Metrics } from '../verify/metrics.js';
import type { AttentionFigure } from './attention-figure.js';
import { scanSection, type ScanView } from './scan-html.js';

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const f = (v: number | null | undefined) => (v === null || v === undefined ? '–' : v.toFixed(2));

/** A perceptually ordered dark-to-bright colour map (approximates "inferno") for attention maps. */
function colour(v: number): [number, number, number] {
  const stops: [number, number, number][] = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
  const t = Math.min(1, Math.max(0, v)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t)), u = t - i;
  const a = stops[i]!, b = stops[i + 1]!;
  return [0, 1, 2].map((k) => Math.round(a[k]! + (b[k]! - a[k]!) * u)) as [number, number, number];
}

async function mapImage(map: number[], h: number, w: number, size: number): Promise<string> {
  const max = Math.max(...map, 1e-12);
  const raw = new Uint8Array(h * w * 3);
  map.forEach((v, i) => raw.set(colour(v / max), 3 * i));
  return png(raw, w, h, 3, Math.max(1, Math.round(size / w)));
}

async function inputImage(img: AttentionFigure['images'][number], size: number): Promise<string> {
  const raw = Uint8Array.from(img.pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  return png(raw, img.w, img.h, img.c === 1 ? 1 : 3, Math.max(1, Math.round(size / img.w)));
}

function lossChart(report: CleanReport): string {
  const own = report.losses[report.method] ?? [];
  const label = methodLabel(report.method);
  const series = [
    { name: baselineLabel(report), colour: '#1f77b4', pts: (report.method === 'ft' ? [] : report.losses.teacher ?? []).map((e) => e.loss) },
    { name: `${label} total`, colour: '#d62728', pts: own.map((e) => e.loss) },
    // The cross-entropy on its own only where other terms add to it (NAD's attention, FST's inner product).
    { name: `${label} cross-entropy`, colour: '#ff9896', pts: own.some((e) => Object.keys(e.terms ?? {}).some((k) => k !== 'ce')) ? own.map((e) => e.ce) : [] },
  ].filter((s) => s.pts.length > 0);
  const W = 560, H = 220, pad = 40;
  const all = series.flatMap((s) => s.pts);
  const max = Math.max(...all, 1e-9), n = Math.max(...series.map((s) => s.pts.length), 2);
  const x = (i: number) => pad + (i * (W - 2 * pad)) / (n - 1), y = (v: number) => H - pad - (v / max) * (H - 2 * pad);
  // A line per series, with a dot per epoch (a one-epoch run still shows its point).
  const lines = series.map((s) => `<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${s.pts.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`
    + s.pts.map((v, i) => `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${s.colour}"><title>epoch ${i + 1}: ${v.toFixed(4)}</title></circle>`).join(''));
  const ticks = Array.from({ length: n }, (_, i) => `<text x="${x(i).toFixed(1)}" y="${H - pad + 14}" font-size="11" text-anchor="middle">${i + 1}</text>`);
  const legend = series.map((s, k) => `<text x="${W - 190}" y="${18 + 16 * k}" fill="${s.colour}" font-size="12">■ ${s.name}</text>`);
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="loss per epoch">
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#999"/><line x1="${pad}" y1="${pad / 2}" x2="${pad}" y2="${H - pad}" stroke="#999"/>
<text x="${W / 2}" y="${H - 8}" font-size="12" text-anchor="middle">epoch</text><text x="6" y="${pad / 2 + 4}" font-size="11">${max.toFixed(2)}</text><text x="${pad - 10}" y="${H - pad + 4}" font-size="11" text-anchor="end">0</text>
${lines.join('\n')}\n${ticks.join('')}\n${legend.join('\n')}</svg>`;
}

function metricsRow(name: string, m: Metrics, der: number | null): string {
  return `<tr><th>${esc(name)}</th><td>${f(m.acc)}</td><td>${f(m.acc_all)}</td><td>${f(m.asr)}</td><td>${f(m.ra)}</td><td>${f(der)}</td></tr>`;
}

export async function renderHtmlReport(report: CleanReport, fig?: AttentionFigure, scans: ScanView[] = []): Promise<string> {
  let figure = '<p>No attention maps (no test images).</p>';
  if (fig && fig.images.length > 0) {
    const head = `<tr><th>image</th>${fig.models.map((m) => fig.taps.map((t, k) => `<th>${esc(m.name)}<br><small>tap ${k + 1} (${t.h}×${t.w})</small></th>`).join('')).join('')}</tr>`;
    const rows: string[] = [];
    for (let i = 0; i < fig.images.length; i++) {
      const img = fig.images[i]!;
      const cells: string[] = [];
      for (const m of fig.models) for (let k = 0; k < fig.taps.length; k++) cells.push(`<td><img alt="" src="${await mapImage(m.maps[i]![k]!, fig.taps[k]!.h, fig.taps[k]!.w, 64)}"></td>`);
      rows.push(`<tr><td><img alt="input" src="${await inputImage(img, 64)}"><br><small>label ${img.label}${img.triggered ? ', triggered' : ''}</small></td>${cells.join('')}</tr>`);
    }
    figure = `<table class="maps">${head}${rows.join('\n')}</table>`;
  }
  const r = report;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nad-onnx report: ${esc(r.model.path)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table.metrics{border-collapse:collapse}table.metrics td,table.metrics th{border-bottom:1px solid #ddd;padding:.35rem .8rem;text-align:right}
table.metrics th:first-child{text-align:left}table.maps td{text-align:center;padding:2px}table.maps img{image-rendering:pixelated;width:64px;height:64px}
table.maps th{font-weight:normal;font-size:12px}.ok{color:#2a7}.bad{color:#c33}code{background:#f4f4f4;padding:0 .25rem}
</style></head><body>
<h1>Backdoor removal report</h1>
<p><code>${esc(r.model.path)}</code> → <code>${esc(r.output.path)}</code> ·
${r.output.written ? '<span class="ok">written</span>' : `<span class="bad">not written: ${esc(r.gates.failed.join('; '))}</span>`} ·
${esc(methodLabel(r.method))}, ${r.data.train.n} clean images, ${r.data.test.n} test images, seed ${r.seed}, training engine ${esc(engineText(r))}, ${f(r.timings.total_s)} s</p>
<h2>Before, ${r.teacher ? esc(baselineLabel(r)) + ', ' : ''}${esc(methodLabel(r.method))}</h2>
<table class="metrics"><tr><th>model</th><th>ACC (non-target) %</th><th>ACC (all) %</th><th>ASR %</th><th>RA %</th><th>DER %</th></tr>
${metricsRow('before', r.before, null)}
${r.teacher && r.method !== 'ft' ? metricsRow(baselineLabel(r), r.teacher, r.der.teacher) : ''}
${(r.stages ?? []).map((st) => metricsRow(`${methodLabel(st.method)} (stage)`, st.metrics, st.der)).join('\n')}
${metricsRow(`${methodLabel(r.method)} (output)`, r.after, r.der.after)}
</table>
<h2>Loss per epoch</h2>
${lossChart(r)}
<h2>Attention maps per tap</h2>
<p>Normalised attention maps (mean over channels of |F|<sup>${(r.parameters.p as number | undefined) ?? 2}</sup>) of the residual-group taps for clean test images and their triggered copies, before cleaning${r.teacher ? `, for ${esc(baselineLabel(r))}` : ''} and after ${esc(methodLabel(r.method))} (brighter = more attention).</p>
${figure}
${(await Promise.all(scans.map(scanSection))).join('\n')}
<h2>Settings</h2>
<pre>${esc(JSON.stringify(r.parameters, null, 1))}</pre>
</body></html>
`;
}
