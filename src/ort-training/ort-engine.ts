/**
 * The onnxruntime engine: each call runs the generated training graph (training-graph.ts) with the given
 * parameter values and the batch as inputs, and returns the loss, its terms, the gradients and the batch
 * statistics. The optimiser, the running-statistics update and any weight perturbation happen outside.
 */
import * as ort from 'onnxruntime-node';
import type { TrainableModel } from '../import/trainable-model.js';
import { INPUT_GRADIENT, refuseParameterValues, type Batch, type BatchNormMask, type GradientSpec, type StepResult, type TrainingEngine } from '../training/engine.js';
import type { ParameterStore } from '../training/parameter-store.js';
import { createSession, SPINNING_THREADS } from '../verify/onnx-runtime.js';
import { nchwcBlockSize } from './nchwc-conv.js';
import { buildTrainingGraph, type TrainingGraph } from './training-graph.js';

export class OrtEngine implements TrainingEngine {
  readonly name = 'onnxruntime' as const;
  private readonly maskDefaults = new Map<string, Float32Array>();

  private constructor(
    private readonly model: TrainableModel, private readonly store: ParameterStore, private readonly spec: GradientSpec,
    readonly graph: TrainingGraph, private readonly session: ort.InferenceSession,
  ) {
    for (const m of graph.maskInputs) {
      this.maskDefaults.set(m.mask, new Float32Array(m.channels).fill(1));
      this.maskDefaults.set(m.noiseW, new Float32Array(m.channels));
      this.maskDefaults.set(m.noiseB, new Float32Array(m.channels));
    }
  }

  get masks(): BatchNormMask[] {
    return this.graph.maskInputs;
  }

  /** `tuning`: spinning idle threads (createEngine's `alone`), onnxruntime session options to try, a profile file
   * prefix (bench/step-time.mjs), the NCHWc block (0: plain convolutions). */
  static async create(
    model: TrainableModel, store: ParameterStore, spec: GradientSpec,
    tuning?: { spin?: boolean; profilePrefix?: string; session?: ort.InferenceSession.SessionOptions; nchwcBlock?: number },
  ): Promise<OrtEngine> {
    const nchwcBlock = tuning?.nchwcBlock ?? (await nchwcBlockSize());
    const graph = buildTrainingGraph(model, spec, { constants: store.entries, nchwcBlock });
    const session = await createSession(graph.bytes, 'training graph', undefined, false, {
      // No memory pattern: with one, onnxruntime plans a second, contiguous block for each batch shape it
      // has seen and its arena keeps the first run's chunks beside it (PreAct-ResNet-18, NAD: peak RSS
      // 2.6 GB with 4.0 GB without this line after 3 steps of 64 and one of 52). Where tensors live does
      // not change what is computed.
      enableMemPattern: false,
      ...(tuning?.spin ? SPINNING_THREADS : {}),
      ...tuning?.session,
      ...(tuning?.profilePrefix ? { enableProfiling: true, profileFilePrefix: tuning.profilePrefix } : {}),
    });
    return new OrtEngine(model, store, spec, graph, session);
  }

  async gradients(batch: Batch, values: ReadonlyMap<string, Float32Array>): Promise<StepResult> {
    const g = this.graph;
    refuseParameterValues(this.spec, this.store.entries, values);
    const [c, h, w] = this.model.inputShape;
    const n = batch.n;
    const feeds: Record<string, ort.Tensor> = { [g.imageInput]: new ort.Tensor('float32', batch.nchw, [n, c, h, w]) };
    for (const term of this.spec.terms) {
      const own = term.feed?.(batch.labels, n) ?? {};
      for (const inp of term.inputs) {
        const data = own[inp.name] ?? batch.extras?.[inp.name];
        if (!data) throw new Error(`loss term ${term.name}: no input '${inp.name}'`);
        feeds[inp.name] = new ort.Tensor('float32', data, inp.dims.map((d) => (d === -1 ? n : d)));
      }
    }
    for (const d of g.dropoutInputs) {
      const size = n * d.dims.reduce((a, v) => a * v, 1);
      // A step without drawn masks (a direct engine call) keeps every unit.
      feeds[d.input] = new ort.Tensor('float32', batch.dropout?.[d.node] ?? new Float32Array(size).fill(1), [n, ...d.dims]);
    }
    for (const [name, dflt] of this.maskDefaults) feeds[name] = new ort.Tensor('float32', values.get(name) ?? dflt, [dflt.length]);
    for (const name of g.parameterInputs) {
      const s = this.store.get(name);
      feeds[name] = new ort.Tensor('float32', values.get(name) ?? s.value, s.dims);
    }
    const out = await this.session.run(feeds);
    const scalar = (name: string) => (out[name]!.data as Float32Array)[0]!;
    const terms: Record<string, number> = {};
    this.spec.terms.forEach((t, i) => (terms[t.name] = scalar(g.termOutputs[i]!)));
    const grads = new Map<string, Float32Array>();
    for (const [name, outName] of g.gradientOutputs) grads.set(name === g.imageInput ? INPUT_GRADIENT : name, out[outName]!.data as Float32Array);
    const stats = g.batchStats.map((st) => {
      const bv = out[st.varOutput]!.data as Float32Array;
      const m = n * st.perImage, unbias = m / Math.max(1, m - 1);
      return { meanParam: st.meanParam, varParam: st.varParam, momentum: st.momentum, mean: out[st.meanOutput]!.data as Float32Array, varUnbiased: bv.map((v) => v * unbias) };
    });
    return { total: scalar(g.lossOutput), terms, grads, stats, ...(g.logitsOutput ? { logits: out[g.logitsOutput]!.data as Float32Array } : {}) };
  }

  /** Ends profiling (if on): onnxruntime writes the profile file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
