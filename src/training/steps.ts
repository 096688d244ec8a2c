/**
 * Step strategies on top of an engine's gradient pass: a plain step (gradients, running statistics,
 * optimiser), and sharpness-aware minimisation (SAM / adaptive SAM, the gradient taken at perturbed weights
 * and applied at the unperturbed ones).
 */
import type { Batch, TrainingEngine } from './engine.js';
import type { Optimizer } from './optimizers/optimizer.js';
import type { ParameterStore } from './parameter-store.js';
import type { BatchStep } from './epoch-loop.js';

/** Gradients at the store's values, running statistics, one optimiser update; `after` runs after the update. */
export function plainStep(engine: TrainingEngine, store: ParameterStore, opt: Optimizer, after?: (store: ParameterStore) => void): BatchStep {
  return async (batch: Batch, lr: number) => {
    const r = await engine.gradients(batch, store.values());
    store.applyBatchStats(r.stats);
    opt.step(store, r.grads, lr);
    after?.(store);
    return { total: r.total, terms: r.terms };
  };
}

export interface SamConfig {
  rho: number;
  /** Adaptive SAM (ASAM): the perturbation scaled by |w| (BackdoorBench's FT-SAM default). */
  adaptive: boolean;
}

/**
 * One (A)SAM step as BackdoorBench's SAM optimiser does it: gradient g at w (running statistics updated),
 * e = rho * T^2 g / (||T g|| + 1e-12) with T = |w| (adaptive) or 1 and one norm over every parameter with a
 * gradient, the gradient again at w + e with the running statistics left alone, and the optimiser's update
 * of w with that second gradient.
 */
export function samStep(engine: TrainingEngine, store: ParameterStore, opt: Optimizer, cfg: SamConfig): BatchStep {
  return async (batch: Batch, lr: number) => {
    const first = await engine.gradients(batch, store.values());
    store.applyBatchStats(first.stats);
    let sq = 0;
    for (const [name, g] of first.grads) {
      const w = store.get(name).value;
      for (let i = 0; i < g.length; i++) {
        const t = cfg.adaptive ? Math.abs(w[i]!) * g[i]! : g[i]!;
        sq += t * t;
      }
    }
    const scale = cfg.rho / (Math.sqrt(sq) + 1e-12);
    const perturbed = store.values();
    for (const [name, g] of first.grads) {
      const w = store.get(name).value;
      const p = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) p[i] = w[i]! + scale * g[i]! * (cfg.adaptive ? w[i]! * w[i]! : 1);
      perturbed.set(name, p);
    }
    const second = await engine.gradients(batch, perturbed);
    opt.step(store, second.grads, lr);
    return { total: first.total, terms: first.terms };
  };
}
