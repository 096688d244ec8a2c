/** The scan result as printed: a per-class table (the JSON form is scan/scan.ts's scanJson). */
import type { ScanResult } from '../scan/scan.js';

export function formatScan(r: ScanResult): string {
  const lines = [`scan (Neural Cleanse): ${r.images} images, ${r.classes.length} classes, ${r.seconds.toFixed(0)} s, engine ${r.engine}`, ''];
  lines.push('class                 mask L1   anomaly index   trigger success');
  const flagged = new Set(r.flagged);
  for (const k of r.classes) {
    const name = `${k.label}${k.name ? ` (${k.name})` : ''}`;
    lines.push(`${name.padEnd(20)} ${k.mask_l1.toFixed(1).padStart(8)}   ${k.anomaly_index.toFixed(2).padStart(13)}   ${(100 * k.trigger_success).toFixed(1).padStart(13)} %${flagged.has(k.label) ? '   flagged' : ''}${k.reached ? '' : '   (success threshold never reached)'}`);
  }
  lines.push('');
  lines.push(r.flagged.length
    ? `flagged: ${r.flagged.join(', ')} (anomaly index above ${r.threshold}; max ${r.max_anomaly_index.toFixed(2)})`
    : `nothing flagged (max anomaly index ${r.max_anomaly_index.toFixed(2)}, threshold ${r.threshold}); full-image triggers (blending, warping) may not show as small masks`);
  const f = r.secondary;
  if (f) {
    lines.push('');
    lines.push(`feature-space signal (channel mask after ${f.tap}): channels needed per class ${f.channels_l1.map((v) => v.toFixed(1)).join(', ')}`);
    lines.push(f.flagged.length ? `  flagged: ${f.flagged.join(', ')} (index above ${r.threshold})` : `  nothing flagged (max index ${Math.max(...f.classes.map((k) => k.score)).toFixed(2)})`);
  }
  return lines.join('\n');
}
