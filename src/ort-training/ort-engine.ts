/**
 * The onnxruntime engine: each step runs the generated training graph (training-graph.ts) with the
 * current parameters as inputs, then applies PyTorch's SGD and the running-statistics update in JS.
 * Parameters live here in ONNX layout between sync() calls.
 */
import * as ort from 'onnxruntime-node';
import { convWeightFromOnnx, convWeightToOnnx, parameterToOnnx, type Parameter } from '../import/parameters.js';
import type { TrainableModel } from '../import/trainable-model.js';
import type { Batch, TrainingEngine } from '../nad/engine.js';
import { sgdUpdate, type Sgd } from '../nad/sgd.js';
import type { StepLosses } from '../nad/train-step.js';
import * as tf from '../tf.js';
import { createSession } from '../verify/onnx-runtime.js';
import { buildTrainingGraph, type DistillSpec, type TrainingGraph } from './training-graph.js';

interface ParamState {
  value: Float32Array; // ONNX layout
  dims: number[];
  momentum: Float32Array | null; // ONNX layout
}

/** A stored-layout buffer of parameter `p` (conv weights are [KH,KW,Ci,Co] there) in ONNX layout, and back. */
function toOnnx(p: Parameter, stored: Float32Array): Float32Array {
  if (p.role !== 'conv-weight') return stored;
  return tf.tidy(() => new Float32Array(convWeightToOnnx(tf.tensor(stored, p.variable.shape)).dataSync()));
}

function fromOnnx(p: Parameter, onnxValues: Float32Array): Float32Array {
  if (p.role !== 'conv-weight') return onnxValues;
  return tf.tidy(() => new Float32Array(convWeightFromOnnx(tf.tensor(onnxValues, p.onnxDims)).dataSync()));
}

export class OrtEngine implements TrainingEngine {
  readonly name = 'onnxruntime' as const;
  private readonly state = new Map<string, ParamState>();

  private readonly classes: number;

  private constructor(
    private readonly model: TrainableModel, private readonly sgd: Sgd, private readonly graph: TrainingGraph,
    private readonly session: ort.InferenceSession,
  ) {
    this.classes = model.numClasses;
    const vars = model.trainableVariables();
    const momentum = sgd.state(vars);
    const byVar = new Map(vars.map((v, i) => [v, momentum[i]!]));
    for (const p of model.params.values()) {
      const m = byVar.get(p.variable) ?? null;
      this.state.set(p.name, {
        value: parameterToOnnx(p),
        dims: p.role === 'conv-weight' ? [...p.onnxDims] : [...p.variable.shape],
        momentum: m && toOnnx(p, m),
      });
    }
  }

  /** `tuning`: onnxruntime session options to try and a profile file prefix (bench/step-time.mjs). */
  static async create(model: TrainableModel, sgd: Sgd, distill?: DistillSpec, tuning?: { profilePrefix?: string; session?: ort.InferenceSession.SessionOptions }): Promise<OrtEngine> {
    const graph = buildTrainingGraph(model, distill);
    const session = await createSession(graph.bytes, 'training graph', 2, false, {
      ...tuning?.session,
      ...(tuning?.profilePrefix ? { enableProfiling: true, profileFilePrefix: tuning.profilePrefix } : {}),
    });
    return new OrtEngine(model, sgd, graph, session);
  }

  async step(batch: Batch, lr: number, maps?: Float32Array[]): Promise<StepLosses> {
    const g = this.graph;
    const [c, h, w] = this.model.inputShape;
    const n = batch.n;
    const oneHot = new Float32Array(n * this.classes);
    for (let i = 0; i < n; i++) oneHot[i * this.classes + batch.labels[i]!] = 1;
    const feeds: Record<string, ort.Tensor> = {
      [g.imageInput]: new ort.Tensor('float32', batch.nchw, [n, c, h, w]),
      [g.labelsInput]: new ort.Tensor('float32', oneHot, [n, this.classes]),
    };
    g.teacherMapInputs.forEach((name, k) => {
      const m = maps?.[k];
      if (!m) throw new Error('distillation step without teacher maps');
      feeds[name] = new ort.Tensor('float32', m, [n, m.length / n]);
    });
    for (const name of g.parameterInputs) {
      const s = this.state.get(name)!;
      feeds[name] = new ort.Tensor('float32', s.value, s.dims);
    }
    const out = await this.session.run(feeds);
    const scalar = (name: string) => (out[name]!.data as Float32Array)[0]!;
    const losses: StepLosses = { total: scalar(g.lossOutput), ce: scalar(g.ceOutput), at: g.attentionOutputs.map(scalar) };
    // Running statistics first (PyTorch updates them in the forward pass), then the SGD update.
    for (const st of g.batchStats) {
      const mean = this.state.get(st.meanParam)!, variance = this.state.get(st.varParam)!;
      const bm = out[st.meanOutput]!.data as Float32Array, bv = out[st.varOutput]!.data as Float32Array;
      const m = n * st.perImage, unbias = m / Math.max(1, m - 1);
      for (let i = 0; i < bm.length; i++) {
        mean.value[i] = mean.value[i]! * st.momentum + bm[i]! * (1 - st.momentum);
        variance.value[i] = variance.value[i]! * st.momentum + bv[i]! * unbias * (1 - st.momentum);
      }
    }
    for (const [name, outName] of g.gradientOutputs) {
      const s = this.state.get(name)!;
      s.momentum = sgdUpdate(s.value, out[outName]!.data as Float32Array, s.momentum, lr, this.sgd.config);
    }
    for (const t of Object.values(out)) t.dispose?.();
    return losses;
  }

  sync(): void {
    const byVar = new Map<tf.Variable, Float32Array | null>();
    for (const p of this.model.params.values()) {
      const s = this.state.get(p.name)!;
      tf.tidy(() => p.variable.assign(tf.tensor(fromOnnx(p, s.value), p.variable.shape)));
      byVar.set(p.variable, s.momentum && fromOnnx(p, s.momentum));
    }
    const vars = this.model.trainableVariables();
    this.sgd.setState(vars, vars.map((v) => byVar.get(v)!));
  }

  /** Ends profiling (if on): onnxruntime writes the profile file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
