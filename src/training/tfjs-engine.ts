/**
 * The TensorFlow.js engine: tf.variableGrads over the interpreted graph, with the loss terms built from
 * TensorFlow.js ops. It covers BatchNorm in train mode and gradients with respect to the parameters; a
 * method that needs more (input gradients, eval-mode BatchNorm) runs on the onnxruntime engine.
 */
import * as tf from '../tf.js';
import { onnxValues } from '../import/parameters.js';
import type { TrainableModel } from '../import/trainable-model.js';
import { EngineCannot, refuseParameterValues, type Batch, type GradientSpec, type StepResult, type TrainingEngine } from './engine.js';
import type { TermContext } from './loss/loss-term.js';
import { tfjsOps } from './tfjs-tensor-ops.js';
import type { ParameterStore } from './parameter-store.js';

/** What of a spec the tfjs engine cannot compute, or undefined when it can run it. */
export function tfjsLacks(spec: GradientSpec): string | undefined {
  if (spec.input) return 'gradients with respect to the input';
  if (spec.batchNorm === 'eval') return 'eval-mode BatchNorm training';
  if (spec.params === false) return 'a pass without parameter gradients';
  if (spec.masks) return 'BatchNorm masks';
  return undefined;
}

export class TfjsEngine implements TrainingEngine {
  readonly name = 'tfjs' as const;
  readonly masks = [];
  private readonly capture: string[];

  constructor(private readonly model: TrainableModel, private readonly store: ParameterStore, private readonly spec: GradientSpec) {
    const lacks = tfjsLacks(spec);
    if (lacks) throw new EngineCannot(lacks);
    this.capture = [...new Set(spec.terms.flatMap((t) => t.tensors))];
  }

  async gradients(batch: Batch, values: ReadonlyMap<string, Float32Array>): Promise<StepResult> {
    const m = this.model;
    refuseParameterValues(this.spec, m.params, values);
    for (const p of m.params.values()) {
      const v = values.get(p.name) ?? this.store.get(p.name).value;
      tf.tidy(() => {
        const t = tf.tensor(v, this.store.get(p.name).dims);
        p.variable.assign(p.role === 'conv-weight' ? tf.transpose(t, [2, 3, 1, 0]) : t);
      });
    }
    const [c, h, w] = m.inputShape;
    const held: tf.Tensor[] = [];
    const x = tf.tensor4d(batch.nhwc, [batch.n, h, w, c]);
    held.push(x);
    const feeds = new Map<string, tf.Tensor>();
    for (const term of this.spec.terms) {
      const own = term.feed?.(batch.labels, batch.n) ?? {};
      for (const inp of term.inputs) {
        const data = own[inp.name] ?? batch.extras?.[inp.name];
        if (!data) throw new Error(`loss term ${term.name}: no input '${inp.name}'`);
        const dims = inp.dims.map((d) => (d === -1 ? batch.n : d));
        const t = tf.tensor(data, dims);
        feeds.set(inp.name, t);
        held.push(t);
      }
    }
    const dropoutMasks = new Map<string, tf.Tensor>();
    for (const site of m.dropoutSites) {
      const mask = batch.dropout?.[site.node];
      if (!mask) continue;
      const t = tf.tensor(mask, [batch.n, ...site.dims]);
      dropoutMasks.set(site.node, t);
      held.push(t);
    }
    const vars = m.trainableVariables();
    const byVar = new Map([...m.params.values()].map((p) => [p.variable.name, p]));
    const termValues: tf.Scalar[] = [];
    let stats: StepResult['stats'] = [];
    let logits: Float32Array | undefined;
    try {
      const { value, grads } = tf.variableGrads(() => {
        const r = m.runner.run(x, { training: true, capture: this.capture, dropoutMasks });
        stats = r.statUpdates.map((u) => {
          const s = { meanParam: u.meanName, varParam: u.varName, momentum: u.momentum, mean: new Float32Array(u.batchMean.dataSync()), varUnbiased: new Float32Array(u.batchVarUnbiased.dataSync()) };
          u.batchMean.dispose();
          u.batchVarUnbiased.dispose();
          return s;
        });
        if (this.spec.logits) logits = new Float32Array(r.outputs[0]!.t.dataSync());
        const ctx: TermContext<tf.Tensor> = {
          ops: tfjsOps, logits: r.outputs[0]!.t,
          tensor: (name) => {
            const v = r.captured.get(name);
            if (!v) throw new Error(`tensor '${name}' was not captured`);
            return { t: v.t, channelAxis: v.nhwc ? 3 : 1 };
          },
          input: (name) => feeds.get(name)!,
          param: (name) => m.params.get(name)!.variable,
          constant: (_name, values, dims) => tf.tensor(values, dims),
        };
        let total: tf.Scalar | undefined;
        for (const term of this.spec.terms) {
          const v = term.build(ctx) as tf.Scalar;
          termValues.push(tf.keep(v.clone()));
          const weighted = term.weight === 1 ? v : tf.mul(v, term.weight);
          total = (total ? tf.add(total, weighted) : weighted) as tf.Scalar;
        }
        return total!;
      }, vars);
      const out = new Map<string, Float32Array>();
      for (const [k, g] of Object.entries(grads)) {
        const p = byVar.get(k)!;
        out.set(p.name, onnxValues(g, p.role === 'conv-weight'));
        g.dispose();
      }
      const total = value.dataSync()[0]!;
      value.dispose();
      const terms: Record<string, number> = {};
      this.spec.terms.forEach((t, i) => (terms[t.name] = termValues[i]!.dataSync()[0]!));
      return { total, terms, grads: out, stats, ...(logits ? { logits } : {}) };
    } finally {
      termValues.forEach((t) => t.dispose());
      held.forEach((t) => t.dispose());
    }
  }

  async dispose(): Promise<void> {}
}
