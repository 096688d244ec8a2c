/**
 * Picks and creates the engine for a method's gradient spec: `onnxruntime` runs generated ONNX training
 * graphs (both cores; every capability), `tfjs` differentiates the imported graph with TensorFlow.js (the
 * path for tfjs-node-gpu, and for graphs the generator does not cover). `auto` tries onnxruntime first,
 * then tfjs; an explicit choice that cannot run the method is bad input.
 */
import { BadInputError } from '../errors.js';
import type { TrainableModel } from '../import/trainable-model.js';
import { EngineCannot, type EngineChoice, type GradientSpec, type TrainingEngine } from './engine.js';
import type { ParameterStore } from './parameter-store.js';

export interface EngineRequest {
  choice: EngineChoice;
  /** The method, for messages. */
  method?: string;
  onLog?: (line: string) => void;
  /** `auto` on a GPU TensorFlow build: tfjs is the faster engine there, where it can run the method. */
  preferTfjs?: boolean;
  /** No other session runs between the engine's passes (the BatchNorm-mask loops of ANP and RNP): onnxruntime's
   * idle threads spin instead of sleeping. ANP's iterations ran 5-28 % faster so (bench/anp-spin.mjs; RNP's
   * recovering runs the same graph, not timed apart); fine-tuning gained nothing,
   * and where a frozen model's session alternates with the engine's (NAD's teacher) spinning threads steal
   * the cores (bench/README.md). */
  alone?: boolean;
}

export async function createEngine(model: TrainableModel, store: ParameterStore, spec: GradientSpec, req: EngineRequest): Promise<TrainingEngine> {
  const { TfjsEngine, tfjsLacks } = await import('./tfjs-engine.js');
  const what = req.method ? `--method ${req.method}` : 'this method';
  if (req.choice === 'auto' && req.preferTfjs) {
    const lacks = tfjsLacks(spec);
    if (!lacks) return new TfjsEngine(model, store, spec);
    req.onLog?.(`engine: onnxruntime (the tfjs engine has no ${lacks}, which ${what} needs)`);
  }
  if (req.choice === 'tfjs') {
    try {
      return new TfjsEngine(model, store, spec);
    } catch (e) {
      if (e instanceof EngineCannot) throw new BadInputError(`--engine tfjs: cannot run ${what} (no ${e.message} on the tfjs engine); use --engine onnxruntime`);
      throw e;
    }
  }
  const { OrtEngine } = await import('../ort-training/ort-engine.js');
  const { UnsupportedForTraining } = await import('../ort-training/gradients/gradient-types.js');
  try {
    return await OrtEngine.create(model, store, spec, req.alone ? { spin: true } : undefined);
  } catch (e) {
    if (!(e instanceof UnsupportedForTraining)) throw e;
    if (req.choice === 'onnxruntime') throw new BadInputError(`--engine onnxruntime: cannot train this graph (${e.message}); use --engine tfjs`);
    try {
      const t = new TfjsEngine(model, store, spec);
      req.onLog?.(`engine: tfjs (the onnxruntime engine cannot train this graph: ${e.message})`);
      return t;
    } catch (e2) {
      if (e2 instanceof EngineCannot) throw new BadInputError(`cannot run ${what} on this graph: the onnxruntime engine lacks ${e.message}, the tfjs engine ${e2.message}`);
      throw e2;
    }
  }
}

