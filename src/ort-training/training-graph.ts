/**
 * Generates one ONNX graph that does a whole gradient step's arithmetic for onnxruntime: the imported
 * graph's forward pass (BatchNorm with batch statistics, or with the running ones in 'eval' mode; restored
 * BatchNorms after folded convs), the loss as a weighted sum of terms (training/loss/, built from ONNX ops),
 * and reverse-mode gradients of that loss with respect to the trainable parameters and/or the image input,
 * built from forward ONNX ops, one builder per op type (gradients/). Parameters are graph inputs, so the
 * weights live in JS: the optimiser and any perturbation of the weights (SAM) happen there.
 */
import { resolveInitializer } from '../import/parameters.js';
import { Attrs, type GraphNode } from '../import/graph.js';
import { intValues } from '../import/tensor-data.js';
import type { TrainableModel } from '../import/trainable-model.js';
import { onnx, type NodeProto } from '../onnx/onnx-schema.js';
import type { TermInput } from '../training/loss/loss-term.js';
import { trainsDropout, type GradientSpec } from '../training/engine.js';
import { GraphBuilder } from './graph-builder.js';
import { emitEvalBatchNorm, emitTrainBatchNorm, type TrainBatchNorm } from './gradients/batch-normalization.js';
import { convFilterGradient, convGeometry, convInputGradient } from './gradients/conv.js';
import { emitConv, NCHWC_DOMAIN, type ConvChannels } from './nchwc-conv.js';
import { UnsupportedForTraining, type GradientContext } from './gradients/gradient-types.js';
import { maxPoolGradient } from './gradients/pooling.js';
import { GRADIENTS, NON_DIFFERENTIABLE } from './gradients/registry.js';
import { OnnxTensorOps } from './onnx-tensor-ops.js';

/** The opset the generated graph declares: ScatterElements' reduction needs 16; 17 keeps ReduceMean's axes attribute. */
const MIN_TRAINING_OPSET = 17;

/** What a training graph computes: an engine's gradient spec (terms, parameters and/or input, BatchNorm mode, masks, logits). */
export type GraphSpec = GradientSpec;

/** The mask and noise inputs of one BatchNorm (GraphSpec.masks). */
export interface MaskInput {
  /** The BatchNormalization node, or the Conv whose folded BatchNorm was restored. */
  node: string;
  channels: number;
  mask: string;
  noiseW: string;
  noiseB: string;
}

export interface BatchStatOutput {
  meanParam: string;
  varParam: string;
  /** ONNX convention: running = running * momentum + batch * (1 - momentum). */
  momentum: number;
  meanOutput: string;
  varOutput: string;
  /** Values per channel for one image (H*W, or 1 for N x C inputs). */
  perImage: number;
}

export interface TrainingGraph {
  bytes: Uint8Array;
  imageInput: string;
  /** Per-batch inputs of the loss terms. */
  termInputs: TermInput[];
  /** Parameters fed each step (initializer names of the model, or restored-BatchNorm names). */
  parameterInputs: string[];
  /** Gradient output per differentiated tensor: trainable parameters (those a gradient reaches) and the input. */
  gradientOutputs: Map<string, string>;
  batchStats: BatchStatOutput[];
  lossOutput: string;
  /** With GraphSpec.logits: the model's logits as an output. */
  logitsOutput?: string;
  /** One output per term, in the spec's order (unweighted). */
  termOutputs: string[];
  /** With GraphSpec.masks: per BatchNorm, its mask and noise inputs (their gradients are outputs too). */
  maskInputs: MaskInput[];
  /** In training mode, per dropping Dropout node: its mask input ([N, ...dims]). */
  dropoutInputs: { node: string; input: string; dims: number[] }[];
}

interface Emitted {
  node: GraphNode;
  /** Inputs the backward closure returns gradients for, in order. */
  inputs: string[];
  outputs: string[];
  backward(ctx: GradientContext): (string | undefined)[];
}

export interface TrainingGraphOptions {
  /** With spec.constantParams, the parameters' values (ONNX layout), written as initializers. */
  constants?: ReadonlyMap<string, { value: Float32Array; dims: number[] }>;
  /** MLAS's NCHWc block (nchwc-conv.ts): dense convolutions with fed weights run blocked; 0 or absent, plain Conv. */
  nchwcBlock?: number;
}

/** A model Conv node's channels, groups and kernel from its weight's dims [O, C/group, kh, kw]. */
function forwardChannels(n: GraphNode, wDims: number[]): ConvChannels {
  const group = n.attrs.int('group', 1);
  return { in: wDims[1]! * group, out: wDims[0]!, group, kernel: wDims.slice(2) };
}

export function buildTrainingGraph(model: TrainableModel, spec: GraphSpec, options: TrainingGraphOptions = {}): TrainingGraph {
  const { constants } = options;
  const g = model.graph;
  if (spec.constantParams && spec.params !== false) throw new Error('constantParams needs params: false (a constant has no gradient)');
  if (spec.constantParams && !constants) throw new Error('constantParams needs the parameters\' values');
  if (g.opset < 13) throw new UnsupportedForTraining(`${g.file}: opset ${g.opset} (the onnxruntime engine needs 13 or newer)`);
  const b = new GraphBuilder(Math.max(g.opset, MIN_TRAINING_OPSET));
  // Constant weights: onnxruntime's own optimiser lays out and fuses those convolutions better.
  b.nchwcBlock = spec.constantParams ? 0 : options.nchwcBlock ?? 0;
  const params = model.params;
  const trainable = new Set([...params.values()].filter((p) => p.trainable).map((p) => p.name));
  const evalBn = spec.batchNorm === 'eval';
  const extraShapes = new Map<string, number[]>();

  const shapeOf = (name: string): number[] => {
    const s = model.shapes.get(name) ?? extraShapes.get(name);
    if (s) return s;
    if (name === g.input.name) return [1, ...model.inputShape];
    const init = resolveInitializer(g, name) ?? name;
    const p = params.get(init);
    if (p) return p.role === 'conv-weight' || p.onnxDims.length ? p.onnxDims : [...p.variable.shape];
    const c = g.initializers.get(init);
    if (c) return c.dims;
    throw new UnsupportedForTraining(`${g.file}: shape of '${name}' is unknown`);
  };

  // Which tensors depend on the image batch (the loss ops add theirs as they are emitted).
  const batchDep = new Set<string>([g.input.name]);
  for (const n of g.nodes) if (n.inputs.some((i) => i && batchDep.has(i))) n.outputs.forEach((o) => o && batchDep.add(o));

  const emitted: Emitted[] = [];
  // Ops emitted through TensorOps (the loss, the mask pass) are differentiated like the model's own nodes.
  const ops = new OnnxTensorOps(b, extraShapes, batchDep, (proto: NodeProto) => {
    const node: GraphNode = {
      index: -1, name: proto.name!, opType: proto.opType!, domain: '', inputs: proto.input ?? [], outputs: proto.output ?? [],
      attrs: new Attrs(`generated node ${proto.name}`, proto.attribute ?? []), proto,
    };
    const grad = GRADIENTS[node.opType];
    emitted.push({
      node, inputs: node.inputs, outputs: node.outputs,
      backward: (ctx) => {
        if (!grad) throw new UnsupportedForTraining(`generated node: no gradient for ${node.opType}`);
        return grad(ctx);
      },
    });
  });
  // The mask pass: a BatchNorm's scale and shift become mask- and noise-scaled tensors of their own.
  const maskInputs: MaskInput[] = [];
  const masked = (node: string, gamma: string, beta: string, channels: number): [string, string] => {
    if (!spec.masks) return [gamma, beta];
    const k = maskInputs.length;
    const m: MaskInput = { node, channels, mask: `mask#${k}`, noiseW: `noise_w#${k}`, noiseB: `noise_b#${k}` };
    maskInputs.push(m);
    for (const name of [m.mask, m.noiseW, m.noiseB]) ops.known(name, [channels], false);
    ops.known(gamma, [channels], false);
    ops.known(beta, [channels], false);
    return [ops.mul(gamma, ops.add(m.mask, m.noiseW)), ops.mul(beta, ops.add(ops.scalar(1), m.noiseB))];
  };
  const stats: BatchStatOutput[] = [];
  const trainBn = (x: string, xs: number[], gamma: string, beta: string, eps: number, y: string, meanParam: string, varParam: string, momentum: number): TrainBatchNorm => {
    const bn = emitTrainBatchNorm(b, x, gamma, beta, eps, xs.length, xs[1]!, y);
    const meanOutput = `stat#mean#${stats.length}`, varOutput = `stat#var#${stats.length}`;
    b.node('Identity', [bn.mean], {}, [meanOutput]);
    b.node('Identity', [bn.variance], {}, [varOutput]);
    stats.push({ meanParam, varParam, momentum, meanOutput, varOutput, perImage: xs.length === 4 ? xs[2]! * xs[3]! : 1 });
    return bn;
  };

  const dropoutInputs: TrainingGraph['dropoutInputs'] = [];
  const dropping = new Map(trainsDropout(spec) ? model.dropoutSites.map((d) => [d.node, d]) : []);

  for (const n of g.nodes) {
    const where = `${g.file}: node '${n.name}' (${n.opType})`;
    if (n.domain && n.domain !== 'ai.onnx') throw new UnsupportedForTraining(`${where}: domain ${n.domain}`);
    const restored = model.runner.restored.get(n.name);
    const site = n.opType === 'Dropout' ? dropping.get(n.name) : undefined;
    if (site) {
      // Training-mode Dropout: the input times the mask the training loop drew (fed per step).
      if (n.outputs[1]) throw new UnsupportedForTraining(`${where}: Dropout's mask output is read by the graph`);
      const input = `dropout#${dropoutInputs.length}`;
      dropoutInputs.push({ node: n.name, input, dims: site.dims });
      const mul = { ...n.proto, name: n.name, opType: 'Mul', input: [n.inputs[0]!, input], output: [n.outputs[0]!], attribute: [] };
      b.nodes.push(mul);
      const node: GraphNode = { ...n, opType: 'Mul', inputs: mul.input, outputs: mul.output, attrs: new Attrs(where, []), proto: mul };
      emitted.push({ node, inputs: mul.input, outputs: mul.output, backward: (ctx) => GRADIENTS.Mul!(ctx) });
    } else if (n.opType === 'BatchNormalization') {
      const [x, gamma0, beta0, mean, variance] = n.inputs as string[];
      const xs = shapeOf(x!), eps = n.attrs.float('epsilon', 1e-5);
      const [gamma, beta] = masked(n.name, gamma0!, beta0!, xs[1]!);
      const bn = evalBn
        ? emitEvalBatchNorm(b, x!, gamma!, beta!, mean!, variance!, eps, xs.length, xs[1]!, n.outputs[0]!)
        : trainBn(x!, xs, gamma!, beta!, eps, n.outputs[0]!, resolveInitializer(g, mean!) ?? mean!, resolveInitializer(g, variance!) ?? variance!, n.attrs.float('momentum', 0.9));
      emitted.push({
        node: n, inputs: [x!, gamma!, beta!], outputs: [n.outputs[0]!],
        backward: (ctx) => {
          const r = bn.backward(ctx.dy[0]!, ctx.needs(0));
          return [r.dx, ctx.needs(1) ? r.dgamma : undefined, ctx.needs(2) ? r.dbeta : undefined];
        },
      });
    } else if (n.opType === 'Conv' && restored) {
      const [x, w] = n.inputs as [string, string];
      const [gamma, beta] = masked(n.name, restored.gammaName, restored.betaName, shapeOf(n.outputs[0]!)[1]!);
      const z = b.fresh('conv_no_bias');
      emitConv(b, x, w, undefined, n.proto.attribute ?? [], forwardChannels(n, shapeOf(w)), z, `${n.name}#no_bias`);
      const ys = shapeOf(n.outputs[0]!);
      const bn = evalBn
        ? emitEvalBatchNorm(b, z, gamma, beta, restored.meanName, restored.varName, restored.eps, ys.length, ys[1]!, n.outputs[0]!)
        : trainBn(z, ys, gamma, beta, restored.eps, n.outputs[0]!, restored.meanName, restored.varName, restored.momentum);
      emitted.push({
        node: n, inputs: [x, w, gamma, beta], outputs: [n.outputs[0]!],
        backward: (ctx) => {
          const r = bn.backward(ctx.dy[0]!, true);
          const geo = convGeometry(ctx, x, n.outputs[0]!, shapeOf(w));
          return [
            ctx.needs(0) ? convInputGradient(b, r.dx!, w, geo) : undefined,
            ctx.needs(1) ? convFilterGradient(b, x, r.dx!, geo, shapeOf(w)) : undefined,
            ctx.needs(2) ? r.dgamma : undefined,
            ctx.needs(3) ? r.dbeta : undefined,
          ];
        },
      });
    } else if (n.opType === 'MaxPool') {
      const idx = b.fresh('maxpool_indices');
      b.nodes.push({ ...n.proto, name: n.name, output: [n.outputs[0]!, idx] });
      emitted.push({ node: n, inputs: [n.inputs[0]!], outputs: [n.outputs[0]!], backward: (ctx) => maxPoolGradient(ctx, idx) });
    } else {
      if (n.opType === 'Conv') emitConv(b, n.inputs[0]!, n.inputs[1]!, n.inputs[2] || undefined, n.proto.attribute ?? [], forwardChannels(n, shapeOf(n.inputs[1]!)), n.outputs[0]!, n.name);
      else b.nodes.push({ ...n.proto, name: n.name });
      const grad = GRADIENTS[n.opType];
      emitted.push({
        node: n, inputs: n.inputs, outputs: n.outputs,
        backward: (ctx) => {
          if (!grad) throw new UnsupportedForTraining(`${where}: no gradient for ${n.opType}`);
          return grad(ctx);
        },
      });
    }
  }

  // Loss: the weighted terms, emitted as ONNX ops that the reverse pass below differentiates like the model's.
  const logits = g.outputs[0]!.name;
  ops.known(logits, shapeOf(logits), true);
  const termInputs: TermInput[] = [];
  const termOutputs: string[] = [];
  let total: string | undefined;
  spec.terms.forEach((term, k) => {
    for (const inp of term.inputs) {
      if (!termInputs.some((t) => t.name === inp.name)) termInputs.push(inp);
      ops.known(inp.name, inp.dims.map((d) => (d === -1 ? 1 : d)), true);
    }
    const value = term.build({
      ops, logits,
      tensor: (name) => ({ t: ops.known(name, shapeOf(name), batchDep.has(name)), channelAxis: 1 }),
      input: (name) => name,
      param: (name) => {
        if (!params.has(name)) throw new Error(`loss term ${term.name}: '${name}' is not a parameter`);
        return ops.known(name, shapeOf(name), false);
      },
      constant: (name, values, dims) => {
        if (!extraShapes.has(name)) b.initializer(name, { dtype: 'float32', dims, data: values } as never);
        return ops.known(name, dims, false);
      },
    });
    const out = `loss#term_${k}`;
    b.node('Identity', [value], {}, [out]);
    termOutputs.push(out);
    const weighted = term.weight === 1 ? value : ops.mul(value, ops.scalar(term.weight));
    total = total === undefined ? weighted : ops.add(total, weighted);
  });
  // No terms: a forward pass that returns the logits (a method's predictions at given values).
  if (total === undefined && !spec.logits) throw new Error('a training graph needs at least one loss term, or the logits');
  total ??= b.scalar(0);
  b.node('Identity', [total], {}, ['loss#total']);

  // Which tensors the reverse pass must reach: the differentiated ones and everything computed from them.
  const wrt = new Set<string>(spec.params === false ? [] : trainable);
  if (spec.input) wrt.add(g.input.name);
  for (const m of maskInputs) [m.mask, m.noiseW, m.noiseB].forEach((name) => wrt.add(name));
  const needsGrad = new Set<string>(wrt);
  for (const e of emitted) {
    if (!NON_DIFFERENTIABLE.has(e.node.opType) && e.inputs.some((i) => i && needsGrad.has(i))) e.outputs.forEach((o) => o && needsGrad.add(o));
  }
  const grads = new Map<string, string[]>();
  const addGrad = (name: string, gr: string) => {
    const l = grads.get(name);
    if (l) l.push(gr);
    else grads.set(name, [gr]);
  };
  addGrad(total, b.scalar(1));

  // Reverse pass.
  const gradOf = (name: string): string | undefined => {
    const l = grads.get(name);
    if (!l) return undefined;
    if (l.length > 1) {
      const s = b.one('Sum', l);
      grads.set(name, [s]);
      return s;
    }
    return l[0];
  };
  for (let i = emitted.length - 1; i >= 0; i--) {
    const e = emitted[i]!;
    const dy = e.outputs.map((o) => (o && needsGrad.has(o) ? gradOf(o) : undefined));
    if (dy.every((d) => d === undefined)) continue;
    const needs = (k: number) => !!e.inputs[k] && needsGrad.has(e.inputs[k]!);
    if (!e.inputs.some((_, k) => needs(k))) continue;
    const ctx: GradientContext = {
      b, node: e.node, where: `${g.file}: node '${e.node.name}' (${e.node.opType})`, dy, needs, shape: shapeOf,
      batchDependent: (name) => batchDep.has(name),
      constantInts: (name) => {
        if (!name) return undefined;
        const own = b.intConstants.get(name);
        if (own) return own;
        const v = model.runner.constants.get(name);
        return v ? intValues(v) : model.batchFreeInts.get(name);
      },
    };
    const out = e.backward(ctx);
    out.forEach((gr, k) => gr && needs(k) && addGrad(e.inputs[k]!, gr));
  }

  const gradientOutputs = new Map<string, string>();
  for (const name of wrt) {
    const gr = gradOf(name);
    if (!gr) continue;
    const out = `grad#${name}`;
    b.node('Identity', [gr], {}, [out]);
    gradientOutputs.set(name, out);
  }

  // Inputs: the image batch, the terms' per-batch inputs and every parameter the emitted nodes read; the
  // model's other initializers (shapes, constants) are copied.
  const read = new Set(b.nodes.flatMap((n) => n.input ?? []));
  const readParams = [...read].filter((name) => params.has(name));
  const parameterInputs = spec.constantParams ? [] : readParams;
  if (spec.constantParams) {
    for (const name of readParams) {
      const p = constants!.get(name);
      if (!p) throw new Error(`constantParams: no value for parameter '${name}'`);
      b.initializer(name, { dtype: 'float32', dims: p.dims, data: p.value });
    }
  }
  for (const name of read) if (!params.has(name) && g.initializers.has(name)) b.initializer(name, g.initializers.get(name)!);
  const F = onnx.TensorProto.DataType.FLOAT;
  const vi = (name: string, dims?: (number | string)[]) => ({
    name, type: { tensorType: { elemType: F, shape: dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined } },
  });
  const [c, h, w] = model.inputShape;
  const inputs = [
    vi(g.input.name, ['N', c, h, w]),
    ...termInputs.map((t) => vi(t.name, t.dims.map((d) => (d === -1 ? 'N' : d)))),
    ...maskInputs.flatMap((m) => [m.mask, m.noiseW, m.noiseB].map((name) => vi(name, [m.channels]))),
    ...dropoutInputs.map((d) => vi(d.input, ['N', ...d.dims])),
    ...parameterInputs.map((p) => vi(p, shapeOf(p))),
  ];
  if (spec.logits) b.node('Identity', [logits], {}, ['logits#out']);
  const outputs = ['loss#total', ...(spec.logits ? ['logits#out'] : []), ...termOutputs, ...gradientOutputs.values(), ...stats.flatMap((s) => [s.meanOutput, s.varOutput])].map((o) => vi(o));
  const proto = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'nad-onnx training graph',
    opsetImport: [{ domain: '', version: b.opset }, ...(b.usesNchwc ? [{ domain: NCHWC_DOMAIN, version: 1 }] : [])],
    graph: { name: 'nad_training_step', node: b.nodes, input: inputs, output: outputs, initializer: b.initializers },
  });
  return {
    bytes: onnx.ModelProto.encode(proto).finish(),
    imageInput: g.input.name,
    termInputs,
    parameterInputs,
    gradientOutputs,
    batchStats: stats,
    lossOutput: 'loss#total',
    ...(spec.logits ? { logitsOutput: 'logits#out' } : {}),
    termOutputs,
    maskInputs,
    dropoutInputs,
  };
}

/** Why the onnxruntime engine cannot train this model, or undefined when it can. */
export function onnxruntimeCannotTrain(model: TrainableModel, spec: GraphSpec): string | undefined {
  try {
    buildTrainingGraph(model, spec);
    return undefined;
  } catch (e) {
    if (e instanceof UnsupportedForTraining) return e.message;
    throw e;
  }
}
