/** `eval`: ACC / ASR / RA of an ONNX model on test data, computed by onnxruntime-node. */
import { loadDataset } from './data/load-dataset.js';
import { modelBytes } from './export/write-model.js';
import { loadModel } from './import/load-model.js';
import { buildGraph, imageInputShape } from './import/graph.js';
import { evaluateMetrics, type Metrics } from './verify/metrics.js';
import { createEvaluationSession, useThreads } from './verify/onnx-runtime.js';
import { checkAttackOptions, parseTrigger } from './verify/triggers.js';
import { checkFiniteLogits, imageTensors } from './verify/finite-logits.js';
import { useDevice, type DeviceChoice } from './verify/device.js';
import type { EpochProgress } from './progress.js';

export interface EvaluateOptions {
  model: string;
  data: string;
  trigger?: string;
  target?: number;
  poisoned?: string;
  mean?: number[];
  std?: number[];
  batch?: number;
  /** Where onnxruntime runs: cpu, cuda or auto. */
  device?: DeviceChoice;
  /** Threads of the onnxruntime session (default 2). */
  threads?: number;
  onProgress?: (p: EpochProgress) => void;
}

export async function evaluate(o: EvaluateOptions): Promise<Metrics> {
  checkAttackOptions(o);
  await useDevice(o.device ?? 'auto');
  useThreads(o.threads);
  const source = loadModel(o.model);
  const graph = buildGraph(source);
  const [c, h, w] = imageInputShape(graph);
  const shape = { c, h, w };
  const session = await createEvaluationSession(modelBytes(source), o.model, true);
  const outDims = graph.outputs[0]!.dims;
  const numClasses = typeof outDims[1] === 'number' ? outDims[1] : Number.MAX_SAFE_INTEGER;
  checkAttackOptions(o, numClasses);
  const test = await loadDataset({ path: o.data, shape, numClasses, flag: '--data' });
  const poisoned = o.poisoned ? await loadDataset({ path: o.poisoned, shape, numClasses, flag: '--poisoned' }) : undefined;
  const trigger = o.trigger ? await parseTrigger(o.trigger, shape) : undefined;
  try {
    await checkFiniteLogits(session, o.model, test, { mean: o.mean, std: o.std, flag: '--data' },
      { tensors: imageTensors(graph), bytesWith: (names) => modelBytes(source, undefined, undefined, names) });
    return await evaluateMetrics(session, test, { trigger, poisoned, target: o.target, mean: o.mean, std: o.std, batch: o.batch, onProgress: o.onProgress, label: o.model });
  } finally {
    await session.release();
  }
}
