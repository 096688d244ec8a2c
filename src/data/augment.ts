/**
 * The NAD authors' training augmentation on an NHWC batch in [0, 1]: RandomCrop(size, padding 4) with
 * zero padding, RandomHorizontalFlip, then Cutout(1 hole, length 3), whose hole is 2x2 because the
 * code clips y ± length // 2 (their utils' Cutout). Plain JS: a 64-image batch takes well under a millisecond.
 */
import type { Rng } from './random.js';

export interface AugmentConfig {
  pad: number;
  flip: boolean;
  cutout: number; // hole length; 0 = off
}

export const NAD_AUGMENT: AugmentConfig = { pad: 4, flip: true, cutout: 3 };

export function augmentBatch(src: Float32Array, n: number, h: number, w: number, c: number, cfg: AugmentConfig, rng: Rng): Float32Array {
  const out = new Float32Array(src.length);
  const size = h * w * c;
  for (let b = 0; b < n; b++) {
    const dy = rng.int(2 * cfg.pad + 1) - cfg.pad, dx = rng.int(2 * cfg.pad + 1) - cfg.pad;
    const flip = cfg.flip && rng.next() < 0.5;
    const base = b * size;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= h) continue; // zero padding
      for (let x = 0; x < w; x++) {
        const ox = flip ? w - 1 - x : x;
        const sx = x + dx;
        if (sx < 0 || sx >= w) continue;
        const si = base + (sy * w + sx) * c, oi = base + (y * w + ox) * c;
        for (let k = 0; k < c; k++) out[oi + k] = src[si + k]!;
      }
    }
    if (cfg.cutout > 0) {
      const cy = rng.int(h), cx = rng.int(w), half = Math.floor(cfg.cutout / 2);
      for (let y = Math.max(0, cy - half); y < Math.min(h, cy + half); y++) {
        for (let x = Math.max(0, cx - half); x < Math.min(w, cx + half); x++) {
          for (let k = 0; k < c; k++) out[base + (y * w + x) * c + k] = 0;
        }
      }
    }
  }
  return out;
}

/** Per-channel (x - mean) / std on an NHWC batch; identity when no normalisation is given. */
export function normalizeBatch(x: Float32Array, c: number, mean?: number[], std?: number[]): Float32Array {
  if (!mean && !std) return x;
  const m = mean ?? new Array(c).fill(0), s = std ?? new Array(c).fill(1);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const k = i % c;
    out[i] = (x[i]! - m[k]!) / s[k]!;
  }
  return out;
}
