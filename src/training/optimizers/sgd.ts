/**
 * SGD with momentum, Nesterov and L2 weight decay exactly as torch.optim.SGD computes it:
 * d = g + wd * w; buf = d (first step) else momentum * buf + d; d = d + momentum * buf (Nesterov)
 * or buf; w -= lr * d.
 */
import type { ParameterStore } from '../parameter-store.js';
import type { Optimizer } from './optimizer.js';

export interface SgdConfig {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

export class Sgd implements Optimizer {
  readonly kind = 'sgd' as const;
  private readonly buffers = new Map<string, Float32Array>();

  constructor(readonly config: SgdConfig) {}

  step(store: ParameterStore, grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    for (const [name, g] of grads) {
      const e = store.entries.get(name);
      if (!e || !e.trainable) continue;
      const b = sgdUpdate(e.value, g, this.buffers.get(name) ?? null, lr, this.config);
      if (b) this.buffers.set(name, b);
    }
  }

  /** The momentum buffer of a parameter (undefined before its first step). */
  momentum(name: string): Float32Array | undefined {
    return this.buffers.get(name);
  }

  state(): Map<string, Float32Array> {
    return new Map([...this.buffers].map(([k, v]) => [`${k}#momentum`, v]));
  }

  setState(state: ReadonlyMap<string, Float32Array>): void {
    this.buffers.clear();
    for (const [k, v] of state) if (k.endsWith('#momentum')) this.buffers.set(k.slice(0, -'#momentum'.length), v.slice());
  }
}

/**
 * The update on plain arrays: updates `w` in place and returns the momentum buffer (created on the first
 * step, as torch.optim.SGD does).
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
