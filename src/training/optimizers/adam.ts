/**
 * Adam as torch.optim.Adam computes it (L2 weight decay added to the gradient, not AdamW):
 * g += wd * w; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
import type { ParameterStore } from '../parameter-store.js';
import type { Optimizer } from './optimizer.js';

export interface AdamConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAM_DEFAULTS: AdamConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export class Adam implements Optimizer {
  readonly kind = 'adam' as const;
  private readonly slots = new Map<string, { m: Float32Array; v: Float32Array; t: number }>();

  constructor(readonly config: AdamConfig = ADAM_DEFAULTS) {}

  step(store: ParameterStore, grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    for (const [name, g] of grads) {
      const e = store.entries.get(name);
      if (e?.trainable) this.update(name, e.value, g, lr);
    }
  }

  /** One step on a plain array `w` (in place) under the state slot `name` (trigger masks and patterns). */
  update(name: string, w: Float32Array, g: Float32Array, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    let s = this.slots.get(name);
    if (!s) this.slots.set(name, (s = { m: new Float32Array(g.length), v: new Float32Array(g.length), t: 0 }));
    s.t++;
    const c1 = 1 - beta1 ** s.t, c2 = Math.sqrt(1 - beta2 ** s.t);
    for (let i = 0; i < w.length; i++) {
      const d = Math.fround(g[i]! + weightDecay * w[i]!);
      s.m[i] = Math.fround(beta1 * s.m[i]! + (1 - beta1) * d);
      s.v[i] = Math.fround(beta2 * s.v[i]! + (1 - beta2) * d * d);
      w[i] = w[i]! - (lr / c1) * (s.m[i]! / (Math.sqrt(s.v[i]!) / c2 + eps));
    }
  }

  state(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [k, s] of this.slots) {
      out.set(`${k}#m`, s.m);
      out.set(`${k}#v`, s.v);
      out.set(`${k}#t`, Float32Array.of(s.t));
    }
    return out;
  }

  setState(state: ReadonlyMap<string, Float32Array>): void {
    this.slots.clear();
    for (const [k, v] of state) {
      if (!k.endsWith('#m')) continue;
      const name = k.slice(0, -2);
      this.slots.set(name, { m: v.slice(), v: state.get(`${name}#v`)!.slice(), t: state.get(`${name}#t`)![0]! });
    }
  }
}
