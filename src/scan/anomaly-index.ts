/**
 * Neural Cleanse's outlier test (Wang et al. 2019, mad_outlier_detection.py): with the median m of the
 * per-class mask norms and MAD = 1.4826 * median(|norm - m|), a class's anomaly index is |norm - m| / MAD
 * on the small side (a trigger that needs a smaller mask than the others) and 0 above the median.
 */
export const MAD_CONSISTENCY = 1.4826;

export interface AnomalyResult {
  median: number;
  mad: number;
  /** Per class, in the order given. */
  indices: number[];
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
}

export function anomalyIndices(norms: readonly number[]): AnomalyResult {
  if (norms.length < 3) throw new Error(`the anomaly index needs at least 3 classes, got ${norms.length}`);
  const m = median(norms);
  const mad = MAD_CONSISTENCY * median(norms.map((v) => Math.abs(v - m)));
  // All norms equal (MAD 0): nothing stands out.
  const indices = norms.map((v) => (v >= m || mad === 0 ? 0 : (m - v) / mad));
  return { median: m, mad, indices };
}

/** The classes whose index is above the threshold, most anomalous first. */
export function flaggedClasses(indices: readonly number[], threshold: number): number[] {
  return indices.map((v, i) => [v, i] as const).filter(([v]) => v > threshold).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
}
