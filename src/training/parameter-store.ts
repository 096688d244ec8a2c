/**
 * The values training works on: every parameter and running statistic of a TrainableModel (restored
 * BatchNorms included) as Float32Arrays in ONNX layout, by name. Engines read them, optimisers and
 * running-statistics updates write them, and writeTo() puts them back into the model for export.
 */
import * as tf from '../tf.js';
import { convWeightFromOnnx, parameterToOnnx, type ParamRole } from '../import/parameters.js';
import type { TrainableModel } from '../import/trainable-model.js';
import type { BatchStat } from './engine.js';

export interface StoredParameter {
  value: Float32Array;
  dims: number[];
  role: ParamRole;
  trainable: boolean;
}

export class ParameterStore {
  readonly entries = new Map<string, StoredParameter>();

  constructor(model: TrainableModel) {
    for (const p of model.params.values()) {
      this.entries.set(p.name, {
        value: parameterToOnnx(p), dims: p.role === 'conv-weight' ? [...p.onnxDims] : [...p.variable.shape], role: p.role, trainable: p.trainable,
      });
    }
  }

  get(name: string): StoredParameter {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no parameter '${name}'`);
    return e;
  }

  /** Current values by name (the arrays themselves, not copies). */
  values(): Map<string, Float32Array> {
    return new Map([...this.entries].map(([k, v]) => [k, v.value]));
  }

  trainableNames(): string[] {
    return [...this.entries].filter(([, v]) => v.trainable).map(([k]) => k);
  }

  /** Copies of every value (checkpoints, frozen references). */
  snapshot(): Map<string, Float32Array> {
    return new Map([...this.entries].map(([k, v]) => [k, v.value.slice()]));
  }

  load(values: ReadonlyMap<string, Float32Array>): void {
    for (const [k, v] of values) {
      const e = this.entries.get(k);
      if (!e || e.value.length !== v.length) throw new Error(`checkpoint does not match parameter '${k}'`);
      e.value.set(v);
    }
  }

  /** PyTorch's running-statistics update (running = running * momentum + batch * (1 - momentum), ONNX convention). */
  applyBatchStats(stats: BatchStat[]): void {
    for (const s of stats) {
      const mean = this.entries.get(s.meanParam)?.value, variance = this.entries.get(s.varParam)?.value;
      if (!mean || !variance) continue;
      for (let i = 0; i < mean.length; i++) {
        mean[i] = mean[i]! * s.momentum + s.mean[i]! * (1 - s.momentum);
        variance[i] = variance[i]! * s.momentum + s.varUnbiased[i]! * (1 - s.momentum);
      }
    }
  }

  /** Writes every value back into the model's variables. */
  writeTo(model: TrainableModel): void {
    for (const p of model.params.values()) {
      const e = this.entries.get(p.name);
      if (!e) continue;
      tf.tidy(() => {
        const t = tf.tensor(e.value, e.dims);
        p.variable.assign(p.role === 'conv-weight' ? convWeightFromOnnx(t) : t);
      });
    }
  }

  /** Bytes the store holds (for memory estimates). */
  bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.value.byteLength;
    return n;
  }
}
