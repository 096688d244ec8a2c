/**
 * PyTorch's exporter folds a BatchNorm into the Conv before it (W_f = W * g/s, b_f = beta - g*mu/s), so the
 * imported graph trains without that normalisation, and NAD on it does not behave like NAD in PyTorch
 * (measured: README "Folded BatchNorm"). For training we restore one: the conv runs as z = conv(x, W') and
 * is followed by a BatchNorm whose statistics come from the clean data, set so that the eval-mode output
 * is unchanged at the start:
 *   sigma, mu = per-channel std and mean of conv(x, W_f) over calibration images
 *   W' = W_f / sigma, running_mean = mu / sigma, running_var = 1, gamma = sigma * sqrt(1 + eps), beta = b_f + mu
 * (the unit-variance choice of W' scale is ours: the original scale is not recoverable). On export the
 * BatchNorm is folded back with PyTorch's formula, so the written graph is the original one.
 */
import * as tf from '../tf.js';
import type { Graph } from './graph.js';
import type { GraphRunner } from './interpreter.js';
import type { RestoredBatchNorm } from './ops/op-types.js';
import { resolveInitializer, type Parameter } from './parameters.js';

const EPS = 1e-5;

export interface FoldedConv {
  node: string;
  output: string;
  weight: string;
  bias: string;
}

/** Convs with a bias whose output no BatchNormalization consumes: where PyTorch folded one. */
export function findFoldedConvs(graph: Graph): FoldedConv[] {
  const out: FoldedConv[] = [];
  const outputs = new Set(graph.outputs.map((o) => o.name));
  // A weight or bias read directly by two nodes (tied) cannot take two different restored normalisations,
  // so such convs stay as they are. (PyTorch's Identity-forwarded sharing is untied at load time.)
  const uses = new Map<string, number>();
  for (const n of graph.nodes) {
    if (n.opType === 'Identity') continue; // counted where its output is used
    for (const i of n.inputs) {
      const init = i ? resolveInitializer(graph, i) : undefined;
      if (init) uses.set(init, (uses.get(init) ?? 0) + 1);
    }
  }
  for (const n of graph.nodes) {
    if (n.opType !== 'Conv' || !n.inputs[2]) continue;
    const o = n.outputs[0]!;
    if (outputs.has(o)) continue;
    const users = graph.consumers.get(o) ?? [];
    if (users.length === 0 || users.some((u) => u.opType === 'BatchNormalization')) continue;
    const weight = resolveInitializer(graph, n.inputs[1]!), bias = resolveInitializer(graph, n.inputs[2]!);
    if (weight && bias && uses.get(weight) === 1 && uses.get(bias) === 1) out.push({ node: n.name, output: o, weight, bias });
  }
  return out;
}

/**
 * Restores the BatchNorms, calibrating on `calibration` (NHWC, normalised like training inputs).
 * Returns the synthetic parameters it added (running statistics, gamma, beta).
 */
export function restoreFoldedBatchNorm(
  graph: Graph, runner: GraphRunner, params: Map<string, Parameter>, calibration: tf.Tensor4D,
): FoldedConv[] {
  const folded = findFoldedConvs(graph).filter((f) => params.get(f.weight)?.role === 'conv-weight' && params.has(f.bias));
  if (folded.length === 0) return [];
  const stats = tf.tidy(() => {
    const r = runner.run(calibration, { training: false, capture: folded.map((f) => f.output) });
    return folded.map((f) => {
      const y = r.captured.get(f.output)!.t;
      const { mean, variance } = tf.moments(y, [0, 1, 2]);
      return { mean: tf.keep(mean), variance: tf.keep(variance) };
    });
  });
  folded.forEach((f, i) => {
    const w = params.get(f.weight)!, b = params.get(f.bias)!;
    const { mean: yMean, variance } = stats[i]!;
    tf.tidy(() => {
      // Channels that never vary (dead) keep sigma 1 so nothing divides by zero.
      const sigma = tf.where(tf.greater(variance, 1e-12), tf.sqrt(variance), tf.onesLike(variance));
      const mu = tf.sub(yMean, b.variable); // statistics of conv(x, W_f) without its bias
      w.variable.assign(tf.div(w.variable, sigma)); // [KH,KW,Ci,Co] / per-Co sigma
      const bn: RestoredBatchNorm = {
        gamma: tf.variable(tf.mul(sigma, Math.sqrt(1 + EPS)), true),
        beta: tf.variable(tf.add(b.variable, mu), true),
        mean: tf.variable(tf.div(mu, sigma), false),
        variance: tf.variable(tf.onesLike(sigma), false),
        gammaName: `${f.bias}#restored_gamma`,
        betaName: `${f.bias}#restored_beta`,
        meanName: `${f.bias}#restored_mean`,
        varName: `${f.bias}#restored_var`,
        eps: EPS,
        momentum: 0.9,
      };
      for (const v of [bn.gamma, bn.beta, bn.mean, bn.variance]) tf.keep(v);
      runner.restored.set(f.node, bn);
      params.set(bn.meanName, { name: bn.meanName, role: 'bn-mean', trainable: false, variable: bn.mean, onnxDims: [], synthetic: true });
      params.set(bn.varName, { name: bn.varName, role: 'bn-var', trainable: false, variable: bn.variance, onnxDims: [], synthetic: true });
      params.set(bn.gammaName, { name: bn.gammaName, role: 'bn-scale', trainable: true, variable: bn.gamma, onnxDims: [], synthetic: true });
      params.set(bn.betaName, { name: bn.betaName, role: 'bn-bias', trainable: true, variable: bn.beta, onnxDims: [], synthetic: true });
      // The conv's own bias is now carried by beta: it takes no gradient while restored.
      b.trainable = false;
    });
    stats[i]!.mean.dispose();
    stats[i]!.variance.dispose();
  });
  return folded;
}

/** Folds a restored BatchNorm back into ONNX weight and bias values (PyTorch's fusion formula). */
export function foldBack(w: tf.Variable, bn: RestoredBatchNorm): { weight: tf.Tensor; bias: tf.Tensor } {
  const scale = tf.mul(bn.gamma, tf.rsqrt(tf.add(bn.variance, bn.eps)));
  return { weight: tf.mul(w, scale), bias: tf.sub(bn.beta, tf.mul(bn.mean, scale)) };
}
