/**
 * A self-contained HTML page for a scan (or a clean run's scans before and after): per class its mask L1
 * norm, anomaly index and trigger success, with the reverse-engineered mask and pattern, flagged classes
 * first. The data is given; nothing is computed here but the pictures.
 */
import { pngDataUri } from './png.js';

export interface ScanView {
  title: string;
  classes: { label: number; name?: string; mask_l1: number; anomaly_index: number; trigger_success: number; reached: boolean }[];
  /** The feature-space signal, when the scan has one. */
  secondary?: { tap: string; flagged: number[]; classes: { label: number; score: number }[]; channels_l1: number[] };
  flagged: number[];
  threshold: number;
  /** Per label: mask H x W and pattern C x H x W in [0, 1]. */
  triggers: { mask: Float32Array; pattern: Float32Array }[];
  shape: { c: number; h: number; w: number };
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const SIZE = 96;

async function maskImage(mask: Float32Array, h: number, w: number): Promise<string> {
  return pngDataUri(Uint8Array.from(mask, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)), w, h, 1, Math.max(1, Math.round(SIZE / w)));
}

/** The pattern where the mask lets it through (m * p), as the trigger appears on a black image. */
async function triggerImage(mask: Float32Array, pattern: Float32Array, c: number, h: number, w: number): Promise<string> {
  const hw = h * w, raw = new Uint8Array(hw * (c === 1 ? 1 : 3));
  for (let p = 0; p < hw; p++) for (let k = 0; k < (c === 1 ? 1 : 3); k++) raw[p * (c === 1 ? 1 : 3) + k] = Math.round(Math.min(1, Math.max(0, mask[p]! * pattern[Math.min(k, c - 1) * hw + p]!)) * 255);
  return pngDataUri(raw, w, h, c === 1 ? 1 : 3, Math.max(1, Math.round(SIZE / w)));
}

export async function scanSection(v: ScanView): Promise<string> {
  const { c, h, w } = v.shape;
  const flagged = new Set(v.flagged);
  const order = [...v.flagged, ...v.classes.map((x) => x.label).filter((l) => !flagged.has(l)).sort((a, b) => v.classes[a]!.mask_l1 - v.classes[b]!.mask_l1)];
  const rows = [];
  for (const label of order) {
    const k = v.classes[label]!, t = v.triggers[label];
    const pics = t ? `<td><img src="${await maskImage(t.mask, h, w)}" alt="mask of class ${label}"></td><td><img src="${await triggerImage(t.mask, t.pattern, c, h, w)}" alt="trigger of class ${label}"></td>` : '<td>–</td><td>–</td>';
    rows.push(`<tr${flagged.has(label) ? ' style="background:#fde8e8"' : ''}><td>${label}${k.name ? ` (${esc(k.name)})` : ''}</td><td>${k.mask_l1.toFixed(1)}</td><td>${k.anomaly_index.toFixed(2)}</td><td>${(100 * k.trigger_success).toFixed(1)} %${k.reached ? '' : ' (threshold not reached)'}</td><td>${flagged.has(label) ? 'flagged' : ''}</td>${pics}</tr>`);
  }
  const verdict = v.flagged.length ? `flagged: ${v.flagged.map((l) => `class ${l}`).join(', ')} (anomaly index above ${v.threshold})` : `nothing flagged (no anomaly index above ${v.threshold})`;
  const f = v.secondary;
  const second = f
    ? `<p>Feature-space signal (the fewest channels after ${esc(f.tap)} that send the features to a class): ${f.flagged.length ? `flagged ${f.flagged.map((l) => `class ${l}`).join(', ')}` : 'nothing flagged'}; channels per class ${f.channels_l1.map((x, l) => `${l}: ${x.toFixed(1)}`).join(', ')}.</p>`
    : '';
  return `<h2>${esc(v.title)}</h2><p>${verdict}</p>${second}
<table><tr><th>class</th><th>mask L1</th><th>anomaly index</th><th>trigger success</th><th></th><th>mask</th><th>mask × pattern</th></tr>
${rows.join('\n')}</table>`;
}

export async function renderScanHtml(views: ScanView[], heading: string): Promise<string> {
  const body = [];
  for (const v of views) body.push(await scanSection(v));
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(heading)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
img{image-rendering:pixelated;display:block}</style></head><body>
<h1>${esc(heading)}</h1>
<p>Neural Cleanse (Wang et al. 2019): for each class, the smallest mask and pattern that send clean images of other classes there. A backdoor's target needs a much smaller mask than the other classes: its anomaly index (distance below the median in units of 1.4826 × MAD) stands out. Full-image triggers (blending, warping) are not small patches and may not show here.</p>
${body.join('\n')}
</body></html>
`;
}
