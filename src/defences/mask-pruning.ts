/**
 * Pruning BatchNorm channels by learned masks, shared by ANP and RNP: the rule (a fixed threshold, or the
 * largest threshold whose accuracy on a held-back 10 % of --data stays within some points, never the
 * triggered data), and writing it as the authors do: a pruned channel's BatchNorm scale becomes 0 and its
 * shift stays. A restored BatchNorm folds back into its conv as zero weights with the shift as the bias when
 * the model is written, so the graph stays the same.
 */
import * as tf from '../tf.js';
import { normalizeBatch } from '../data/augment.js';
import { selectRows, type Dataset } from '../data/dataset.js';
import { subsetIndices } from '../data/random.js';
import { BadInputError } from '../errors.js';
import { resolveInitializer } from '../import/parameters.js';
import type { TrainableModel } from '../import/trainable-model.js';
import type { BatchNormMask } from '../training/engine.js';
import type { ParameterStore } from '../training/parameter-store.js';

export type PruneRule = { kind: 'threshold'; threshold: number } | { kind: 'clean-acc'; points: number };

export interface Pruning {
  /** Channels with a mask at or below it were pruned; null when the clean-accuracy search pruned none. */
  threshold: number | null;
  pruned: number;
  channels: number;
}

/** --prune-by clean-acc:<points>. */
export function parsePruneBy(v: string): PruneRule {
  const m = /^clean-acc:([0-9.]+)$/.exec(v);
  if (!m || !(Number(m[1]) >= 0)) throw new BadInputError(`--prune-by: expected clean-acc:<points>, e.g. clean-acc:2 (got '${v}')`);
  return { kind: 'clean-acc', points: Number(m[1]) };
}

export function describePruneRule(p: PruneRule): string {
  return p.kind === 'threshold' ? `mask <= ${p.threshold}` : `clean-acc:${p.points} (held-back 10 % of --data)`;
}

/**
 * The data the masks learn from, and the rows held back for the clean-accuracy rule (10 % of --data, from
 * the run's seed; none for a fixed threshold).
 */
export function splitForPruning(data: Dataset, rule: PruneRule, seed: number): { train: Dataset; held?: Dataset } {
  if (rule.kind !== 'clean-acc') return { train: data };
  const hold = subsetIndices(data.n, 0.1, seed + 5);
  const held = new Set(hold);
  return { train: selectRows(data, Int32Array.from({ length: data.n }, (_, i) => i).filter((i) => !held.has(i))), held: selectRows(data, hold) };
}

/**
 * Mask pruning needs BatchNorm channels: the graph's BatchNormalization nodes or BatchNorms restored from
 * convs (the sites the training graph masks). The pipeline refuses a model with none (Defence.masksBatchNorm)
 * before anything trains; `masker` names the method, or the chain's stage, that masks.
 */
export function requireBatchNorm(method: string, model: TrainableModel, path: string, masker: string): void {
  if (model.runner.restored.size > 0 || model.graph.nodes.some((n) => n.opType === 'BatchNormalization')) return;
  model.dispose();
  throw new BadInputError(`--method ${method}: ${path} has no BatchNorm layer (nor a folded one to restore); ${masker} masks BatchNorm channels`);
}

/** The parameter each mask scales: a BatchNormalization's scale initializer, or a restored BatchNorm's gamma. */
export function scaleParameter(model: TrainableModel, m: BatchNormMask): string {
  const restored = model.runner.restored.get(m.node);
  if (restored) return restored.gammaName;
  const node = model.graph.nodes.find((n) => n.name === m.node)!;
  return resolveInitializer(model.graph, node.inputs[1]!) ?? node.inputs[1]!;
}

/** Accuracy (%) of the model with the store's values on a dataset (BatchNorm in eval mode). */
function accuracyWith(model: TrainableModel, store: ParameterStore, data: Dataset, mean?: number[], std?: number[]): number {
  store.writeTo(model);
  let correct = 0;
  const size = data.h * data.w * data.c;
  for (let s = 0; s < data.n; s += 256) {
    const n = Math.min(256, data.n - s);
    const x = normalizeBatch(data.x.subarray(s * size, (s + n) * size), data.c, mean, std);
    const pred = tf.tidy(() => model.forward(tf.tensor4d(x, [n, data.h, data.w, data.c]), { training: false }).logits.argMax(1).dataSync());
    for (let i = 0; i < n; i++) if (pred[i] === data.labels[s + i]) correct++;
  }
  return (100 * correct) / Math.max(1, data.n);
}

/**
 * Prunes the store's model (in place) by the masks learned for `bns`: scale 0 for the channels whose mask is
 * at or below the rule's threshold. A layer with every channel pruned passes nothing on: a fixed threshold
 * that would do so is refused (and the model disposed: the caller has nothing left to do with it); the
 * clean-accuracy search stops below it.
 */
export function pruneByMasks(
  method: string, model: TrainableModel, store: ParameterStore, bns: readonly BatchNormMask[], masks: ReadonlyMap<string, Float32Array>,
  rule: PruneRule, opts: { held?: Dataset; mean?: number[]; std?: number[]; log: (line: string) => void },
): Pruning {
  const scales = bns.map((m) => ({ mask: masks.get(m.mask)!, param: scaleParameter(model, m) }));
  const channels = scales.flatMap(({ mask, param }) => Array.from(mask, (v, k) => ({ param, k, v })));
  const original = new Map(scales.map(({ param }) => [param, store.get(param).value.slice()]));
  const pruneAt = (threshold: number) => {
    for (const [name, v] of original) store.get(name).value.set(v);
    let n = 0;
    for (const ch of channels) if (ch.v <= threshold) { store.get(ch.param).value[ch.k] = 0; n++; }
    return n;
  };
  const emptied = (t: number) => bns.find((m) => masks.get(m.mask)!.every((v) => v <= t));
  // The clean-accuracy search starts from no pruning: masks are clipped to [0, 1], so even its first level
  // (mask <= 0) can prune many channels, and one that already costs too much must leave the model whole.
  let threshold: number | null = rule.kind === 'threshold' ? rule.threshold : null;
  if (rule.kind === 'threshold') {
    const e = emptied(rule.threshold);
    if (e) {
      model.dispose();
      throw new BadInputError(`--method ${method}: pruning at mask <= ${rule.threshold} would leave BatchNorm '${e.node}' with no channel (all ${e.channels} masks at or below it); lower --prune-threshold or use --prune-by clean-acc:<points>`);
    }
  } else {
    const held = opts.held!;
    pruneAt(-1);
    const base = accuracyWith(model, store, held, opts.mean, opts.std);
    for (let t = 0; t <= 0.9 + 1e-9; t += 0.05) {
      if (emptied(t)) break;
      pruneAt(t);
      const acc = accuracyWith(model, store, held, opts.mean, opts.std);
      opts.log(`${method}: threshold ${t.toFixed(2)}: held-back accuracy ${acc.toFixed(1)} % (unpruned ${base.toFixed(1)} %)`);
      if (base - acc > rule.points) break;
      threshold = t;
    }
  }
  const pruned = pruneAt(threshold ?? -1);
  opts.log(threshold === null
    ? `${method}: pruned none of ${channels.length} BatchNorm channels (even the channels with mask 0 cost more than ${rule.kind === 'clean-acc' ? rule.points : 0} points of held-back accuracy)`
    : `${method}: pruned ${pruned} of ${channels.length} BatchNorm channels (mask <= ${threshold.toFixed(2)})`);
  return { threshold, pruned, channels: channels.length };
}
