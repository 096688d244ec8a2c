/** `eval`: ACC / ASR / RA of an ONNX model on test data, computed by onnxruntime-node. */
import { loadDataset } from './data/load-dataset.js';
import { BadInputError } from './errors.js';
import { modelBytes } from './export/write-model.js';
import { loadModel } from './import/load-model.js';
import { buildGraph } from './import/graph.js';
import { evaluateMetrics, type Metrics } from './verify/metrics.js';
import { createSession } from './verify/onnx-runtime.js';
import { parseTrigger } from './verify/triggers.js';
import type { EpochProgress } from './nad/train-epochs.js';

export interface EvaluateOptions {
  model: string;
  data: string;
  trigger?: string;
  target?: number;
  poisoned?: string;
  mean?: number[];
  std?: number[];
  batch?: number;
  onProgress?: (p: EpochProgress) => void;
}

export async function evaluate(o: EvaluateOptions): Promise<Metrics> {
  if ((o.trigger || o.poisoned) && o.target === undefined) throw new BadInputError('--trigger/--poisoned need --target <label>');
  const source = loadModel(o.model);
  const graph = buildGraph(source);
  const dims = graph.input.dims;
  if (dims.length !== 4 || dims.slice(1).some((d) => typeof d !== 'number')) throw new BadInputError(`${o.model}: input must be N x C x H x W with fixed C, H, W`);
  const [c, h, w] = dims.slice(1) as number[];
  const shape = { c: c!, h: h!, w: w! };
  const session = await createSession(modelBytes(source), o.model, 2, true);
  const outDims = graph.outputs[0]!.dims;
  const numClasses = typeof outDims[1] === 'number' ? outDims[1] : Number.MAX_SAFE_INTEGER;
  if (o.target !== undefined && !(Number.isInteger(o.target) && o.target >= 0 && o.target < numClasses)) {
    throw new BadInputError(`--target: ${o.target} is not a class of this model (0..${numClasses - 1})`);
  }
  const test = await loadDataset({ path: o.data, shape, numClasses, flag: '--data' });
  const poisoned = o.poisoned ? await loadDataset({ path: o.poisoned, shape, numClasses, flag: '--poisoned' }) : undefined;
  const trigger = o.trigger ? await parseTrigger(o.trigger, shape) : undefined;
  try {
    return await evaluateMetrics(session, test, { trigger, poisoned, target: o.target, mean: o.mean, std: o.std, batch: o.batch, onProgress: o.onProgress, label: o.model });
  } finally {
    await session.release();
  }
}
