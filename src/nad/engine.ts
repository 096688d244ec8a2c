/**
 * Training engines behind one interface: `onnxruntime` runs each step as a generated ONNX training graph
 * (src/ort-training; both cores, 4.6x the wasm backend per step here), `tfjs` differentiates the imported graph
 * with TensorFlow.js (the path for tfjs-node / tfjs-node-gpu users, and for graphs the generator does not
 * cover). Both train the same TrainableModel: an engine reads the model's variables and the Sgd's
 * momentum when created and writes them back on sync(), so export, checkpoints and checks are shared.
 */
import { BadInputError } from '../errors.js';
import type { TrainableModel } from '../import/trainable-model.js';
import type { Sgd } from './sgd.js';
import type { StepLosses } from './train-step.js';

export const ENGINES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type EngineChoice = (typeof ENGINES)[number];

export interface Batch {
  /** Augmented, normalised images, NHWC and the same in NCHW. */
  nhwc: Float32Array;
  nchw: Float32Array;
  labels: Int32Array;
  n: number;
}

export interface TrainingEngine {
  readonly name: Exclude<EngineChoice, 'auto'>;
  /** One SGD step; `maps` are the teacher's normalised attention maps per tap ([n, H*W]) for NAD. */
  step(batch: Batch, lr: number, maps?: Float32Array[]): Promise<StepLosses>;
  /** Writes weights, running statistics and momentum back into the model's variables and the Sgd. */
  sync(): void;
  dispose(): Promise<void>;
}

export interface EngineSpec {
  choice: EngineChoice;
  distill?: { betas: number[]; p: number };
  onLog?: (line: string) => void;
}

/** What `auto` resolves to on a tfjs backend: with a GPU TensorFlow build, tfjs is the faster engine. */
export function autoEngine(backend: string): EngineChoice {
  return backend === 'tensorflow-gpu' ? 'tfjs' : 'auto';
}

export function checkEngineChoice(choice: string): EngineChoice {
  if (!(ENGINES as readonly string[]).includes(choice)) throw new BadInputError(`--engine: unknown engine '${choice}' (choose from ${ENGINES.join(', ')})`);
  return choice as EngineChoice;
}

export async function createEngine(model: TrainableModel, sgd: Sgd, spec: EngineSpec): Promise<TrainingEngine> {
  const { TfjsEngine } = await import('./tfjs-engine.js');
  if (spec.choice === 'tfjs') return new TfjsEngine(model, sgd, spec.distill);
  const { OrtEngine } = await import('../ort-training/ort-engine.js');
  const { UnsupportedForTraining } = await import('../ort-training/gradients/gradient-types.js');
  try {
    return await OrtEngine.create(model, sgd, spec.distill);
  } catch (e) {
    if (!(e instanceof UnsupportedForTraining)) throw e;
    if (spec.choice === 'onnxruntime') throw new BadInputError(`--engine onnxruntime: cannot train this graph (${e.message}); use --engine tfjs`);
    spec.onLog?.(`engine: tfjs (the onnxruntime engine cannot train this graph: ${e.message})`);
    return new TfjsEngine(model, sgd, spec.distill);
  }
}
