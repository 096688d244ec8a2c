/**
 * The written bytes are verified before anything is reported: onnxruntime's logits on the first test images
 * must equal those of the model that was trained (its own forward pass), within float32 rounding.
 */
import type * as ort from 'onnxruntime-node';
import { normalizeBatch } from '../data/augment.js';
import type { Dataset } from '../data/dataset.js';
import { ExitCode, NadError } from '../errors.js';
import { nhwcToNchw, runModel } from './onnx-runtime.js';

/** `forward`: the trained model's logits for an NHWC batch of `n` images. Returns the largest |difference|. */
export async function checkExport(
  session: ort.InferenceSession, test: Dataset, opts: { mean?: number[]; std?: number[] }, forward: (nhwc: Float32Array, n: number) => Float32Array,
): Promise<number> {
  const k = Math.min(64, test.n), size = test.h * test.w * test.c;
  const x = normalizeBatch(test.x.subarray(0, k * size), test.c, opts.mean, opts.std);
  const ref = await runModel(session, nhwcToNchw(x, k, test.h, test.w, test.c), [k, test.c, test.h, test.w]);
  const mine = forward(x, k);
  let diff = 0, scale = 0;
  for (let i = 0; i < ref.data.length; i++) {
    diff = Math.max(diff, Math.abs(ref.data[i]! - mine[i]!));
    scale = Math.max(scale, Math.abs(ref.data[i]!));
  }
  if (!(diff <= 1e-3 * Math.max(1, scale))) throw new NadError(`export check failed: onnxruntime logits differ from the trained model by ${diff}`, ExitCode.internal);
  return diff;
}
