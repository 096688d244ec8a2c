/** An image classification dataset in memory: NHWC float32 pixels in [0, 1], integer labels. */
export interface Dataset {
  /** Where it came from, for messages. */
  source: string;
  x: Float32Array;
  labels: Int32Array;
  n: number;
  h: number;
  w: number;
  c: number;
  /** Class names where the format has them (ImageFolder). */
  classes?: string[];
}

export function imageSize(d: Pick<Dataset, 'h' | 'w' | 'c'>): number {
  return d.h * d.w * d.c;
}

/** The images at `indices`, as a new dataset. */
export function selectRows(d: Dataset, indices: ArrayLike<number>): Dataset {
  const size = imageSize(d);
  const x = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!;
    x.set(d.x.subarray(j * size, (j + 1) * size), i * size);
    labels[i] = d.labels[j]!;
  }
  return { ...d, x, labels, n: indices.length };
}
