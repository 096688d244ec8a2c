/**
 * SGD with momentum, Nesterov and L2 weight decay exactly as torch.optim.SGD computes it:
 * d = g + wd * w; buf = d (first step) else momentum * buf + d; d = d + momentum * buf (Nesterov)
 * or buf; w -= lr * d. Written by hand: tfjs's MomentumOptimizer has no weight decay.
 */
import * as tf from '../tf.js';

export interface SgdConfig {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

export class Sgd {
  private readonly buffers = new Map<tf.Variable, tf.Tensor>();

  constructor(readonly config: SgdConfig) {}

  step(vars: tf.Variable[], grads: Record<string, tf.Tensor>, lr: number): void {
    const { momentum, nesterov, weightDecay } = this.config;
    for (const v of vars) {
      const g = grads[v.name];
      if (!g) continue;
      tf.tidy(() => {
        let d: tf.Tensor = weightDecay !== 0 ? tf.add(g, tf.mul(v, weightDecay)) : g;
        if (momentum !== 0) {
          const prev = this.buffers.get(v);
          const buf = prev ? tf.add(tf.mul(prev, momentum), d) : d.clone();
          prev?.dispose();
          this.buffers.set(v, tf.keep(buf));
          d = nesterov ? tf.add(d, tf.mul(buf, momentum)) : buf;
        }
        v.assign(tf.sub(v, tf.mul(d, lr)));
      });
    }
  }

  /** Momentum buffers in variable order (for checkpoints). */
  state(vars: tf.Variable[]): (Float32Array | null)[] {
    return vars.map((v) => {
      const b = this.buffers.get(v);
      return b ? new Float32Array(b.dataSync()) : null;
    });
  }

  /** Restores momentum buffers saved by state() (same variable order). */
  setState(vars: tf.Variable[], buffers: (Float32Array | null)[]): void {
    vars.forEach((v, i) => {
      const b = buffers[i];
      this.buffers.get(v)?.dispose();
      if (b) this.buffers.set(v, tf.keep(tf.tensor(b, v.shape)));
      else this.buffers.delete(v);
    });
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

/**
 * The same update on plain arrays (the onnxruntime engine keeps its parameters in JS): updates `w` in
 * place and returns the momentum buffer (created on the first step, as torch.optim.SGD does).
 */
export function sgdUpdate(w: Float32Array, g: Float32Array, buf: Float32Array | null, lr: number, cfg: SgdConfig): Float32Array | null {
  const { momentum, nesterov, weightDecay } = cfg;
  const first = momentum !== 0 && !buf;
  const b = momentum !== 0 ? (buf ?? new Float32Array(w.length)) : null;
  for (let i = 0; i < w.length; i++) {
    let d = Math.fround(g[i]! + weightDecay * w[i]!);
    if (b) {
      b[i] = first ? d : Math.fround(momentum * b[i]! + d);
      d = nesterov ? Math.fround(d + momentum * b[i]!) : b[i]!;
    }
    w[i] = w[i]! - lr * d;
  }
  return b;
}
