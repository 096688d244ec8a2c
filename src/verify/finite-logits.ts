/**
 * A model whose weights are damaged computes NaN or infinite logits before any training; that is bad
 * input, not a training failure. The first clean batch is run before anything else, and where it gives
 * non-finite logits the first node whose output is non-finite is looked up on one offending image (the
 * model with its float intermediate tensors exposed as outputs).
 */
import type * as ort from 'onnxruntime-node';
import { toModelInput } from '../data/model-input.js';
import type { Dataset } from '../data/dataset.js';
import { BadInputError } from '../errors.js';
import type { Graph } from '../import/graph.js';
import { createSession, runModel } from './onnx-runtime.js';

/** Ops whose outputs are float tensors computed from the image: the ones worth exposing to find the first NaN. */
const FLOAT_OPS = new Set(['Conv', 'BatchNormalization', 'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'Softmax', 'LogSoftmax', 'Add', 'Sub', 'Mul', 'Div',
  'Gemm', 'MatMul', 'GlobalAveragePool', 'GlobalMaxPool', 'AveragePool', 'MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Pad', 'Concat', 'ReduceMean',
  'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);

/** The graph's float tensors computed from the image, in topological order, with their nodes. */
export function imageTensors(g: Graph): { name: string; node: string; op: string }[] {
  const dep = new Set([g.input.name]);
  const out: { name: string; node: string; op: string }[] = [];
  for (const n of g.nodes) {
    if (!n.inputs.some((i) => i && dep.has(i))) continue;
    n.outputs.forEach((o) => o && dep.add(o));
    if (FLOAT_OPS.has(n.opType) && n.outputs[0]) out.push({ name: n.outputs[0], node: n.name, op: n.opType });
  }
  return out;
}

export interface NonFiniteLocator {
  tensors: { name: string; node: string; op: string }[];
  /** The model's bytes with these tensors exposed as outputs. */
  bytesWith(names: string[]): Uint8Array;
}

export async function checkFiniteLogits(
  session: ort.InferenceSession, file: string, data: Dataset, opts: { mean?: number[]; std?: number[]; flag: string }, locate: NonFiniteLocator,
): Promise<void> {
  const k = Math.min(64, data.n), size = data.h * data.w * data.c;
  const x = toModelInput(data.x.subarray(0, k * size), k, data.h, data.w, data.c, opts.mean, opts.std);
  const { data: logits } = await runModel(session, x, [k, data.c, data.h, data.w]);
  const per = logits.length / k;
  let bad = 0, first = -1;
  for (let i = 0; i < k; i++) {
    if (logits.subarray(i * per, (i + 1) * per).every(Number.isFinite)) continue;
    bad++;
    if (first < 0) first = i;
  }
  if (bad === 0) return;
  let where = '';
  try {
    const names = locate.tensors.map((t) => t.name);
    const debug = await createSession(locate.bytesWith(names), `${file} (debug outputs)`);
    const one = x.subarray(first * data.c * data.h * data.w, (first + 1) * data.c * data.h * data.w);
    const { Tensor } = await import('onnxruntime-node');
    const out = await debug.run({ [debug.inputNames[0]!]: new Tensor('float32', one, [1, data.c, data.h, data.w]) }, names);
    await debug.release();
    const hit = locate.tensors.find((t) => !(out[t.name]!.data as Float32Array).every(Number.isFinite));
    if (hit) where = ` (the first non-finite output is node '${hit.node}' (${hit.op}))`;
  } catch {
    // Locating is a courtesy: the damage is reported either way.
  }
  throw new BadInputError(`${file}: the model computes NaN or infinite logits for ${bad} of the first ${k} ${opts.flag} images before any training${where}; its weights are damaged`);
}
