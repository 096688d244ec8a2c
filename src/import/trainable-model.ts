/** An imported ONNX classifier as a trainable tfjs model: parameters, forward pass, taps, shapes. */
import * as tf from '../tf.js';
import { BadInputError } from '../errors.js';
import { buildGraph, imageInputShape, type Graph } from './graph.js';
import { GraphRunner, type RunResult } from './interpreter.js';
import { loadModel, type LoadedModel } from './load-model.js';
import type { RunningStatUpdate, Value } from './ops/op-types.js';
import { convWeightToOnnx, createParameters, isRunningStatistic, parameterToOnnx, type Parameter } from './parameters.js';
import { findTaps, namedTaps, type Tap } from './taps.js';
import { batchFreeInts } from './batch-free-ints.js';
import { dropoutSites, type DropoutSite } from './ops/dropout.js';
import { foldBack, restoreFoldedBatchNorm, type FoldedConv } from './restore-batchnorm.js';

export interface ForwardResult {
  logits: tf.Tensor2D;
  taps: Value[];
  statUpdates: RunningStatUpdate[];
}

export class TrainableModel {
  readonly graph: Graph;
  readonly params: Map<string, Parameter>;
  readonly runner: GraphRunner;
  /** C, H, W of the image input. */
  readonly inputShape: [number, number, number];
  /** ONNX shape of every tensor for a batch of one. */
  readonly shapes: Map<string, number[]>;
  /** Integer tensors computed at run time that the batch size cannot change (slice bounds from Shape). */
  readonly batchFreeInts: Map<string, number[]>;
  /** Dropout nodes that drop in training. */
  readonly dropoutSites: DropoutSite[];
  taps: Tap[];

  constructor(readonly source: LoadedModel, tapNames?: string[]) {
    this.graph = buildGraph(source);
    this.inputShape = imageInputShape(this.graph);
    this.params = createParameters(this.graph);
    this.runner = new GraphRunner(this.graph, this.params);
    let shapes = new Map<string, number[]>();
    tf.tidy(() => {
      const [c, h, w] = this.inputShape;
      const r = this.runner.run(tf.zeros([1, h, w, c]), { training: false }, true);
      for (const o of r.outputs) if (o.t.rank !== 2) throw new BadInputError(`${source.path}: output must be N x classes, got rank ${o.t.rank}`);
      shapes = r.shapes!;
    });
    this.shapes = shapes;
    this.dropoutSites = dropoutSites(this.graph, shapes, (n) => this.runner.constants.get(n));
    this.batchFreeInts = new Map();
    if (this.graph.nodes.some((n) => n.opType === 'Shape')) {
      // A second pass at another batch size tells which dimensions are the batch's.
      tf.tidy(() => {
        const [c, h, w] = this.inputShape;
        const other = this.runner.run(tf.zeros([2, h, w, c]), { training: false }, true).shapes!;
        (this as { batchFreeInts: Map<string, number[]> }).batchFreeInts = batchFreeInts(this.graph, (n) => this.runner.constants.get(n), shapes, other);
      });
    }
    this.taps = tapNames && tapNames.length ? namedTaps(this.graph, this.shapes, tapNames) : findTaps(this.graph, this.shapes);
  }

  static fromFile(path: string, tapNames?: string[]): TrainableModel {
    return new TrainableModel(loadModel(path), tapNames);
  }

  get numClasses(): number {
    const s = this.shapes.get(this.graph.outputs[0]!.name)!;
    return s[1]!;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.params.values()].filter((p) => p.trainable).map((p) => p.variable);
  }

  /**
   * x: NHWC float32 batch. Returns logits [N, classes] and the tap values. `release`: inference outside a
   * gradient tape, intermediates freed as the pass goes (RunOptions.release).
   */
  forward(x: tf.Tensor4D, opts: { training: boolean; bnUsesBatchStats?: boolean; withTaps?: boolean; release?: boolean }): ForwardResult {
    const r: RunResult = this.runner.run(x, {
      training: opts.training,
      bnUsesBatchStats: opts.bnUsesBatchStats,
      release: opts.release,
      capture: opts.withTaps ? this.taps.map((t) => t.name) : undefined,
    });
    return { logits: r.outputs[0]!.t as tf.Tensor2D, taps: this.taps.map((t) => r.captured.get(t.name)!).filter(Boolean), statUpdates: r.statUpdates };
  }

  /** Folds batch statistics into the running statistics (PyTorch: unbiased variance, momentum 0.1). */
  applyRunningStats(updates: RunningStatUpdate[]): void {
    for (const u of updates) {
      const mean = this.params.get(u.meanName), variance = this.params.get(u.varName);
      if (mean && variance) {
        tf.tidy(() => {
          mean.variable.assign(tf.add(tf.mul(mean.variable, u.momentum), tf.mul(u.batchMean, 1 - u.momentum)));
          variance.variable.assign(tf.add(tf.mul(variance.variable, u.momentum), tf.mul(u.batchVarUnbiased, 1 - u.momentum)));
        });
      }
      u.batchMean.dispose();
      u.batchVarUnbiased.dispose();
    }
  }

  /** Convs whose folded BatchNorm was restored for training (see restore-batchnorm.ts). */
  folded: FoldedConv[] = [];

  /** Restores the BatchNorms PyTorch folded into convs, calibrated on `calibration` (NHWC). */
  restoreFoldedBatchNorm(calibration: tf.Tensor4D): FoldedConv[] {
    this.folded = restoreFoldedBatchNorm(this.graph, this.runner, this.params, calibration);
    return this.folded;
  }

  /** Current parameter values in ONNX layout, by initializer name (restored BatchNorms folded back). */
  exportWeights(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const p of this.params.values()) if (!p.synthetic) out.set(p.name, parameterToOnnx(p));
    for (const f of this.folded) {
      const bn = this.runner.restored.get(f.node)!;
      const w = this.params.get(f.weight)!;
      tf.tidy(() => {
        const { weight, bias } = foldBack(w.variable, bn);
        out.set(f.weight, new Float32Array(convWeightToOnnx(weight).dataSync()));
        out.set(f.bias, new Float32Array(bias.dataSync()));
      });
    }
    return out;
  }

  /** Every variable's values in its stored layout (for checkpoints). */
  variableState(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const p of this.params.values()) out.set(p.name, new Float32Array(p.variable.dataSync()));
    return out;
  }

  loadVariableState(state: Map<string, Float32Array>): void {
    for (const p of this.params.values()) {
      const v = state.get(p.name);
      if (!v || v.length !== p.variable.size) throw new Error(`checkpoint does not match variable '${p.name}'`);
      p.variable.assign(tf.tensor(v, p.variable.shape));
    }
  }

  /** Trainable values of the ONNX file (restored BatchNorms not counted). */
  parameterCount(): number {
    let n = 0;
    // By role, not by p.trainable: a restored conv's own bias is frozen while restored but is still the file's.
    for (const p of this.params.values()) if (!p.synthetic && !isRunningStatistic(p.role)) n += p.variable.size;
    return n;
  }

  dispose(): void {
    for (const p of this.params.values()) p.variable.dispose();
    this.runner.dispose();
  }
}
