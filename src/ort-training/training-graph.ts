/**
 * Generates one ONNX graph that does a whole training step's arithmetic for onnxruntime: the imported
 * graph's forward pass in training mode (batch-statistics BatchNorm, restored BatchNorms after folded
 * convs), the loss (cross-entropy plus the weighted NAD attention terms towards the teacher's maps, which
 * are inputs), and reverse-mode gradients built from forward ONNX ops, one builder per op type
 * (gradients/). Parameters are graph inputs, so the weights live in JS and the SGD update happens there.
 */
import { resolveInitializer } from '../import/parameters.js';
import type { GraphNode } from '../import/graph.js';
import { intValues } from '../import/tensor-data.js';
import type { TrainableModel } from '../import/trainable-model.js';
import { onnx } from '../import/onnx-schema.js';
import { GraphBuilder } from './graph-builder.js';
import { emitTrainBatchNorm, type TrainBatchNorm } from './gradients/batch-normalization.js';
import { convFilterGradient, convGeometry, convInputGradient } from './gradients/conv.js';
import { UnsupportedForTraining, type GradientContext } from './gradients/gradient-types.js';
import { maxPoolGradient } from './gradients/pooling.js';
import { GRADIENTS, NON_DIFFERENTIABLE } from './gradients/registry.js';

/** The opset the generated graph declares: ScatterElements' reduction needs 16; 17 keeps ReduceMean's axes attribute. */
const MIN_TRAINING_OPSET = 17;

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
  labelsInput: string;
  /** Normalised teacher attention maps per tap, [N, H*W]. */
  teacherMapInputs: string[];
  /** Parameters fed each step (initializer names of the model, or restored-BatchNorm names). */
  parameterInputs: string[];
  /** Gradient output per trainable parameter (parameters no gradient reaches are absent). */
  gradientOutputs: Map<string, string>;
  batchStats: BatchStatOutput[];
  lossOutput: string;
  ceOutput: string;
  attentionOutputs: string[];
}

interface Emitted {
  node: GraphNode;
  /** Inputs the backward closure returns gradients for, in order. */
  inputs: string[];
  outputs: string[];
  backward(ctx: GradientContext): (string | undefined)[];
}

export interface DistillSpec {
  betas: number[];
  p: number;
}

export function buildTrainingGraph(model: TrainableModel, distill?: DistillSpec): TrainingGraph {
  const g = model.graph;
  if (g.opset < 13) throw new UnsupportedForTraining(`${g.file}: opset ${g.opset} (the onnxruntime engine needs 13 or newer)`);
  const b = new GraphBuilder(Math.max(g.opset, MIN_TRAINING_OPSET));
  const params = model.params;
  const trainable = new Set([...params.values()].filter((p) => p.trainable).map((p) => p.name));

  const shapeOf = (name: string): number[] => {
    const s = model.shapes.get(name);
    if (s) return s;
    if (name === g.input.name) return [1, ...model.inputShape];
    const init = resolveInitializer(g, name) ?? name;
    const p = params.get(init);
    if (p) return p.role === 'conv-weight' || p.onnxDims.length ? p.onnxDims : [...p.variable.shape];
    const c = g.initializers.get(init);
    if (c) return c.dims;
    throw new UnsupportedForTraining(`${g.file}: shape of '${name}' is unknown`);
  };

  // Which tensors depend on a trainable parameter (need gradients) and which on the image batch.
  const needsGrad = new Set<string>(trainable);
  const batchDep = new Set<string>([g.input.name]);
  for (const n of g.nodes) {
    const restored = model.runner.restored.get(n.name);
    const ins = restored ? [n.inputs[0]!, n.inputs[1]!, restored.gammaName, restored.betaName] : n.inputs;
    if (!NON_DIFFERENTIABLE.has(n.opType) && ins.some((i) => i && needsGrad.has(i))) n.outputs.forEach((o) => o && needsGrad.add(o));
    if (n.inputs.some((i) => i && batchDep.has(i))) n.outputs.forEach((o) => o && batchDep.add(o));
  }

  const emitted: Emitted[] = [];
  const stats: BatchStatOutput[] = [];
  const trainBn = (x: string, xs: number[], gamma: string, beta: string, eps: number, y: string, meanParam: string, varParam: string, momentum: number): TrainBatchNorm => {
    const bn = emitTrainBatchNorm(b, x, gamma, beta, eps, xs.length, xs[1]!, y);
    const meanOutput = `stat#mean#${stats.length}`, varOutput = `stat#var#${stats.length}`;
    b.node('Identity', [bn.mean], {}, [meanOutput]);
    b.node('Identity', [bn.variance], {}, [varOutput]);
    stats.push({ meanParam, varParam, momentum, meanOutput, varOutput, perImage: xs.length === 4 ? xs[2]! * xs[3]! : 1 });
    return bn;
  };

  for (const n of g.nodes) {
    const where = `${g.file}: node '${n.name}' (${n.opType})`;
    if (n.domain && n.domain !== 'ai.onnx') throw new UnsupportedForTraining(`${where}: domain ${n.domain}`);
    const restored = model.runner.restored.get(n.name);
    if (n.opType === 'BatchNormalization') {
      const [x, gamma, beta, mean, variance] = n.inputs as string[];
      const bn = trainBn(x!, shapeOf(x!), gamma!, beta!, n.attrs.float('epsilon', 1e-5), n.outputs[0]!,
        resolveInitializer(g, mean!) ?? mean!, resolveInitializer(g, variance!) ?? variance!, n.attrs.float('momentum', 0.9));
      emitted.push({
        node: n, inputs: [x!, gamma!, beta!], outputs: [n.outputs[0]!],
        backward: (ctx) => {
          const r = bn.backward(ctx.dy[0]!, ctx.needs(0));
          return [r.dx, ctx.needs(1) ? r.dgamma : undefined, ctx.needs(2) ? r.dbeta : undefined];
        },
      });
    } else if (n.opType === 'Conv' && restored) {
      const [x, w] = n.inputs as [string, string];
      const gamma = restored.gammaName, beta = restored.betaName;
      const z = b.fresh('conv_no_bias');
      b.nodes.push({ name: `${n.name}#no_bias`, opType: 'Conv', input: [x, w], output: [z], attribute: n.proto.attribute ?? [] });
      const bn = trainBn(z, shapeOf(n.outputs[0]!), gamma, beta, restored.eps, n.outputs[0]!, restored.meanName, restored.varName, restored.momentum);
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
      b.nodes.push({ ...n.proto, name: n.name });
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

  // Loss: cross-entropy on the logits plus beta_k * MSE(normalised student map, teacher map) per tap.
  const logits = g.outputs[0]!.name;
  const classes = shapeOf(logits)[1]!;
  const labelsInput = 'nad#labels';
  const logSoftmax = b.one('LogSoftmax', [logits], { axis: 1 });
  const nll = b.one('Neg', [b.reduceSum(b.one('Mul', [labelsInput, logSoftmax]), [1], false)]);
  const ce = b.reduceMean(nll, [0], false);
  const batchSize = b.countOf(logits, classes);
  const grads = new Map<string, string[]>();
  const addGrad = (name: string, gr: string) => {
    const l = grads.get(name);
    if (l) l.push(gr);
    else grads.set(name, [gr]);
  };
  addGrad(logits, b.one('Div', [b.one('Sub', [b.one('Exp', [logSoftmax]), labelsInput]), batchSize]));

  const teacherMapInputs: string[] = [];
  const attentionOutputs: string[] = [];
  let total = ce;
  if (distill) {
    model.taps.forEach((tap, k) => {
      const t = tap.name;
      const [c, h, w] = shapeOf(t).slice(1) as [number, number, number];
      const p = distill.p;
      const abs = p === 2 ? t : b.one('Abs', [t]);
      const powered = p === 2 ? b.one('Mul', [t, t]) : p === 1 ? abs : b.one('Pow', [abs, b.scalar(p)]);
      const flat = b.one('Reshape', [b.reduceMean(powered, [1], false), b.ints([-1, h * w])]);
      const norm = b.one('Sqrt', [b.reduceSum(b.one('Mul', [flat, flat]), [1], true)]);
      const denom = b.one('Add', [norm, b.scalar(1e-6)]);
      const s = b.one('Div', [flat, denom]);
      const teacher = `nad#teacher_map_${k}`;
      teacherMapInputs.push(teacher);
      const diff = b.one('Sub', [s, teacher]);
      const loss = b.reduceMean(b.one('Mul', [diff, diff]), [0, 1], false);
      const out = `loss#attention_${k}`;
      b.node('Identity', [loss], {}, [out]);
      attentionOutputs.push(out);
      const beta = distill.betas[k]!;
      total = b.one('Add', [total, b.one('Mul', [loss, b.scalar(beta)])]);
      if (beta === 0) return;
      // d/dflat of s = flat / (|flat| + eps): ds / denom - flat * (ds . flat) / (|flat| * denom^2)
      const ds = b.one('Div', [b.one('Mul', [diff, b.scalar(2 * beta)]), b.countOf(diff, 1)]);
      const dot = b.reduceSum(b.one('Mul', [ds, flat]), [1], true);
      // |flat| clamped in this term only: for an all-zero map it is 0 / 0 (PyTorch's norm backward gives 0).
      const safeNorm = b.one('Max', [norm, b.scalar(1e-12)]);
      const dflat = b.one('Sub', [b.one('Div', [ds, denom]), b.one('Mul', [flat, b.one('Div', [dot, b.one('Mul', [safeNorm, b.one('Mul', [denom, denom])])])])]);
      const da = b.one('Reshape', [dflat, b.ints([-1, 1, h, w])]);
      const dt = p === 2
        ? b.one('Mul', [t, b.one('Mul', [da, b.scalar(2 / c)])])
        : p === 1
          ? b.one('Mul', [b.one('Sign', [t]), b.one('Mul', [da, b.scalar(1 / c)])])
          : b.one('Mul', [b.one('Mul', [b.one('Pow', [abs, b.scalar(p - 1)]), b.one('Sign', [t])]), b.one('Mul', [da, b.scalar(p / c)])]);
      addGrad(t, dt);
    });
  }
  b.node('Identity', [ce], {}, ['loss#ce']);
  b.node('Identity', [total], {}, ['loss#total']);

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
        const v = name ? model.runner.constants.get(name) : undefined;
        return v ? intValues(v) : undefined;
      },
    };
    const out = e.backward(ctx);
    out.forEach((gr, k) => gr && needs(k) && addGrad(e.inputs[k]!, gr));
  }

  const gradientOutputs = new Map<string, string>();
  for (const name of trainable) {
    const gr = gradOf(name);
    if (!gr) continue;
    const out = `grad#${name}`;
    b.node('Identity', [gr], {}, [out]);
    gradientOutputs.set(name, out);
  }

  // Inputs: the image batch, labels, teacher maps and every parameter the emitted nodes read; the
  // model's other initializers (shapes, constants) are copied.
  const read = new Set(b.nodes.flatMap((n) => n.input ?? []));
  const parameterInputs = [...read].filter((name) => params.has(name));
  for (const name of read) if (!params.has(name) && g.initializers.has(name)) b.initializer(name, g.initializers.get(name)!);
  const F = onnx.TensorProto.DataType.FLOAT;
  const vi = (name: string, dims?: (number | string)[]) => ({
    name, type: { tensorType: { elemType: F, shape: dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined } },
  });
  const [c, h, w] = model.inputShape;
  const inputs = [
    vi(g.input.name, ['N', c, h, w]),
    vi(labelsInput, ['N', classes]),
    ...teacherMapInputs.map((t, k) => { const s = shapeOf(model.taps[k]!.name); return vi(t, ['N', s[2]! * s[3]!]); }),
    ...parameterInputs.map((p) => vi(p, shapeOf(p))),
  ];
  const outputs = ['loss#total', 'loss#ce', ...attentionOutputs, ...gradientOutputs.values(), ...stats.flatMap((s) => [s.meanOutput, s.varOutput])].map((o) => vi(o));
  const proto = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'nad-onnx training graph',
    opsetImport: [{ domain: '', version: b.opset }],
    graph: { name: 'nad_training_step', node: b.nodes, input: inputs, output: outputs, initializer: b.initializers },
  });
  return {
    bytes: onnx.ModelProto.encode(proto).finish(),
    imageInput: g.input.name,
    labelsInput,
    teacherMapInputs,
    parameterInputs,
    gradientOutputs,
    batchStats: stats,
    lossOutput: 'loss#total',
    ceOutput: 'loss#ce',
    attentionOutputs,
  };
}

/** Why the onnxruntime engine cannot train this model, or undefined when it can. */
export function onnxruntimeCannotTrain(model: TrainableModel): string | undefined {
  try {
    buildTrainingGraph(model);
    return undefined;
  } catch (e) {
    if (e instanceof UnsupportedForTraining) return e.message;
    throw e;
  }
}
