/**
 * PyTorch's exporter folds a BatchNorm into the Conv before it (W_f = W * g/s, b_f = beta - g*mu/s), so the
 * imported graph trains without that normalisation, and NAD on it does not behave like NAD in PyTorch
 * (measured: README "Folded BatchNorm"). For training we restore one: the conv runs as z = conv(x, W') and
 * is followed by a BatchNorm set so that the eval-mode output is unchanged at the start:
 *   W' = k * W_f per output channel, mu, sigma = mean and std of conv(x, W_f) over calibration images,
 *   running_mean = k * mu, running_var = (k * sigma)^2, gamma = sqrt(running_var + eps) / k, beta = b_f + mu.
 * The split of W_f into PyTorch's W and g/s is not recoverable, but it matters: behind a BatchNorm the output
 * does not depend on |W|, so the gradient scales as 1/|W| and SGD's relative step as lr/|W|^2. k sets every
 * restored channel's norm to the median per-channel norm of the convolutions the exporter left alone (their
 * scale is PyTorch's own, grown under the same training): on the CIFAR WRN-16-1 fixture that puts the
 * effective learning rate of the restored convs within a median factor 1.3 of PyTorch's, where a
 * unit-output-variance W' (k = 1/sigma) was 1.7-10.7x too fast (bench/README.md). A graph whose every conv
 * was folded has no such reference; there k = 1/sigma (unit output variance). On export the BatchNorm is
 * folded back with PyTorch's formula (k cancels), so the written graph is the original one.
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
  const stats = calibrationMoments(runner, folded.map((f) => f.output), calibration);
  const target = referenceChannelNorm(params, new Set(folded.map((f) => f.weight)));
  folded.forEach((f, i) => {
    const w = params.get(f.weight)!, b = params.get(f.bias)!;
    const { mean: yMean, variance } = stats[i]!;
    tf.tidy(() => {
      // Channels that never vary (dead) keep sigma 1 so nothing divides by zero.
      const sigma = tf.where(tf.greater(variance, 1e-12), tf.sqrt(variance), tf.onesLike(variance));
      const mu = tf.sub(yMean, b.variable); // statistics of conv(x, W_f) without its bias
      // Per output channel: the norm-matching k where there is a reference and the channel has weights, else 1/sigma.
      const norm = channelNorms(w.variable);
      const unit = tf.div(1, sigma);
      const k = target === undefined ? unit : tf.where(tf.greater(norm, 1e-12), tf.div(target, tf.maximum(norm, 1e-12)), unit);
      const ks = tf.mul(k, sigma);
      const runningVar = tf.square(ks);
      w.variable.assign(tf.mul(w.variable, k)); // [KH,KW,Ci,Co] * per-Co k
      const bn: RestoredBatchNorm = {
        gamma: tf.variable(tf.div(tf.sqrt(tf.add(runningVar, EPS)), k), true),
        beta: tf.variable(tf.add(b.variable, mu), true),
        mean: tf.variable(tf.mul(mu, k), false),
        variance: tf.variable(runningVar, false),
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

/** Images per forward pass while calibrating. */
const CALIBRATION_CHUNK = 32;

/**
 * Per-channel mean and variance of each captured tensor (NHWC) over the calibration images, accumulated a
 * chunk at a time: one pass over 256 CIFAR images at once grew the wasm heap, which never shrinks, by
 * ~0.6 GB on WRN-16-1 (32 at a time: ~0.07 GB). Sums are shifted by the first chunk's mean and kept in
 * float64, so E[y^2] - E[y]^2 does not cancel when a channel's mean is large against its spread.
 */
export function calibrationMoments(runner: GraphRunner, outputs: string[], calibration: tf.Tensor4D): { mean: tf.Tensor1D; variance: tf.Tensor1D }[] {
  const n = calibration.shape[0];
  const acc = outputs.map(() => ({ shift: undefined as Float32Array | undefined, s: new Float64Array(0), ss: new Float64Array(0), count: 0 }));
  for (let i = 0; i < n; i += CALIBRATION_CHUNK) {
    tf.tidy(() => {
      const x = calibration.slice([i, 0, 0, 0], [Math.min(CALIBRATION_CHUNK, n - i), -1, -1, -1]);
      const r = runner.run(x, { training: false, capture: outputs, release: true });
      // Each output's temporaries (two of its size) go at once, not when the chunk's scope ends.
      outputs.forEach((o, j) => tf.tidy(() => {
        const y = r.captured.get(o)!.t;
        const a = acc[j]!;
        if (!a.shift) {
          a.shift = tf.mean(y, [0, 1, 2]).dataSync() as Float32Array;
          a.s = new Float64Array(a.shift.length);
          a.ss = new Float64Array(a.shift.length);
        }
        const d = tf.sub(y, tf.tensor1d(a.shift));
        const s = tf.sum(d, [0, 1, 2]).dataSync(), ss = tf.sum(tf.square(d), [0, 1, 2]).dataSync();
        for (let c = 0; c < s.length; c++) {
          a.s[c] += s[c]!;
          a.ss[c] += ss[c]!;
        }
        a.count += y.size / s.length;
      }));
    });
  }
  return acc.map((a) => {
    const mean = new Float32Array(a.s.length), variance = new Float32Array(a.s.length);
    for (let c = 0; c < a.s.length; c++) {
      const m = a.s[c]! / a.count;
      mean[c] = a.shift![c]! + m;
      variance[c] = Math.max(0, a.ss[c]! / a.count - m * m);
    }
    return { mean: tf.tensor1d(mean), variance: tf.tensor1d(variance) };
  });
}

/** L2 norm of each output channel of a conv weight in tfjs layout [KH, KW, Ci/group, Co]. */
function channelNorms(w: tf.Tensor): tf.Tensor1D {
  return tf.sqrt(tf.sum(tf.square(w), [0, 1, 2])) as tf.Tensor1D;
}

/**
 * The median per-output-channel weight norm over the convolutions not being restored (their scale is the
 * one PyTorch trained), or undefined when every convolution was folded.
 */
export function referenceChannelNorm(params: Map<string, Parameter>, restoring: Set<string>): number | undefined {
  const norms: number[] = [];
  for (const p of params.values()) {
    if (p.role !== 'conv-weight' || restoring.has(p.name) || p.variable.rank !== 4) continue;
    const n = tf.tidy(() => channelNorms(p.variable).dataSync());
    for (const v of n) if (v > 1e-12) norms.push(v);
  }
  if (norms.length === 0) return undefined;
  norms.sort((a, b) => a - b);
  const m = norms.length >> 1;
  return norms.length % 2 ? norms[m]! : (norms[m - 1]! + norms[m]!) / 2;
}

/** Folds a restored BatchNorm back into ONNX weight and bias values (PyTorch's fusion formula). */
export function foldBack(w: tf.Variable, bn: RestoredBatchNorm): { weight: tf.Tensor; bias: tf.Tensor } {
  const scale = tf.mul(bn.gamma, tf.rsqrt(tf.add(bn.variance, bn.eps)));
  return { weight: tf.mul(w, scale), bias: tf.sub(bn.beta, tf.mul(bn.mean, scale)) };
}
