/** Dropout masks for one batch, drawn from the phase's seeded stream (one draw per unit, image by image). */
import type { Rng } from '../data/random.js';
import type { DropoutSite } from '../import/ops/dropout.js';

export function drawDropoutMasks(sites: readonly DropoutSite[], n: number, rng: Rng): Record<string, Float32Array> {
  const masks: Record<string, Float32Array> = {};
  for (const s of sites) {
    const keep = 1 / (1 - s.ratio);
    const m = new Float32Array(n * s.dims.reduce((a, d) => a * d, 1));
    for (let i = 0; i < m.length; i++) m[i] = rng.next() < s.ratio ? 0 : keep;
    masks[s.node] = m;
  }
  return masks;
}
