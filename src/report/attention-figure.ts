/**
 * Attention maps per tap for a few clean and triggered test images, from the ONNX models themselves
 * (onnxruntime with the taps exposed as outputs): the NAD paper's Figure 3, for the HTML report.
 */
import type { Dataset } from '../data/dataset.js';
import { toModelInput } from '../data/model-input.js';
import type { Trigger } from '../verify/triggers.js';
import { attentionMapsNchw } from '../training/attention.js';
import { createSession } from '../verify/onnx-runtime.js';
import * as ort from 'onnxruntime-node';

export interface AttentionFigure {
  taps: { name: string; h: number; w: number }[];
  /** Input images (NHWC in [0, 1]) shown in the figure: clean ones first, then their triggered copies. */
  images: { label: number; triggered: boolean; h: number; w: number; c: number; pixels: number[] }[];
  /** models[m].maps[image][tap] = normalised attention map, row-major H x W. */
  models: { name: string; maps: number[][][] }[];
}

export interface FigureModel {
  name: string;
  /** Model bytes with the taps exposed as outputs. */
  bytes: Uint8Array;
  /** Its tap tensor names (same spatial sizes for every model). */
  taps: string[];
}

export async function attentionFigure(
  models: FigureModel[], test: Dataset, opts: { trigger?: Trigger; target?: number; count?: number; p: number; mean?: number[]; std?: number[] },
): Promise<AttentionFigure> {
  const count = Math.min(opts.count ?? 4, test.n);
  const size = test.h * test.w * test.c;
  // Non-target images, so that the triggered copies show the attack.
  const picks: number[] = [];
  for (let i = 0; i < test.n && picks.length < count; i++) if (opts.target === undefined || test.labels[i] !== opts.target) picks.push(i);
  const imgs: Float32Array[] = picks.map((i) => test.x.slice(i * size, (i + 1) * size));
  const images: AttentionFigure['images'] = picks.map((i, k) => ({ label: test.labels[i]!, triggered: false, h: test.h, w: test.w, c: test.c, pixels: Array.from(imgs[k]!) }));
  if (opts.trigger) {
    for (const [k, i] of picks.entries()) {
      const t = opts.trigger(imgs[k]!, test.h, test.w, test.c);
      imgs.push(t);
      images.push({ label: test.labels[i]!, triggered: true, h: test.h, w: test.w, c: test.c, pixels: Array.from(t) });
    }
  }
  const batch = new Float32Array(imgs.length * size);
  imgs.forEach((im, k) => batch.set(im, k * size));
  const x = toModelInput(batch, imgs.length, test.h, test.w, test.c, opts.mean, opts.std);
  let taps: AttentionFigure['taps'] = [];
  const out: AttentionFigure['models'] = [];
  for (const m of models) {
    const session = await createSession(m.bytes, m.name);
    const tapNames = m.taps;
    const res = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [imgs.length, test.c, test.h, test.w]) }, tapNames);
    await session.release();
    const maps: number[][][] = imgs.map(() => []);
    taps = tapNames.map((name) => {
      const t = res[name]!;
      const [n, c, h, w] = t.dims as number[];
      const hw = h! * w!;
      const all = attentionMapsNchw(t.data as Float32Array, n!, c!, hw, opts.p);
      for (let b = 0; b < n!; b++) maps[b]!.push(Array.from(all.subarray(b * hw, (b + 1) * hw)));
      return { name, h: h!, w: w! };
    });
    out.push({ name: m.name, maps });
  }
  return { taps, images, models: out };
}
