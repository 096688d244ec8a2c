/**
 * Initializers as tfjs variables. Conv/Gemm/MatMul weights and biases, BatchNormalization and
 * LayerNormalization scale/bias, PRelu slopes and the affine Mul/Add parameters after a layer are trainable; BatchNormalization running statistics are variables that training updates but no
 * gradient touches; every other initializer is a constant. Conv weights are stored as [KH,KW,Ci,Co]
 * (what tf.conv2d takes) and turned back into ONNX's [Co,Ci,KH,KW] on export.
 */
import * as tf from '../tf.js';
import { BadInputError } from '../errors.js';
import type { Graph } from './graph.js';
import { floatValues, type TensorValue } from './tensor-data.js';

export type ParamRole = 'conv-weight' | 'weight' | 'bias' | 'bn-scale' | 'bn-bias' | 'bn-mean' | 'bn-var';

export interface Parameter {
  name: string; // the initializer's name in the ONNX file
  role: ParamRole;
  trainable: boolean;
  variable: tf.Variable;
  onnxDims: number[];
  /** Added for training only (a restored BatchNorm); never written to the ONNX file. */
  synthetic?: boolean;
}

/** Follows Identity nodes back to the initializer they forward (PyTorch dedupes equal tensors so). */
export function resolveInitializer(graph: Graph, name: string): string | undefined {
  let cur = name;
  for (let hops = 0; hops < 64; hops++) {
    if (graph.initializers.has(cur)) return cur;
    const p = graph.producer.get(cur);
    if (!p || p.opType !== 'Identity') return undefined;
    cur = p.inputs[0] ?? '';
  }
  return undefined;
}

/** BatchNormalization running statistics: updated by training, never by a gradient. */
export function isRunningStatistic(role: ParamRole): boolean {
  return role === 'bn-mean' || role === 'bn-var';
}

const WEIGHTED_LAYERS = new Set(['Conv', 'Gemm', 'MatMul', 'BatchNormalization', 'LayerNormalization']);

export function assignRoles(graph: Graph): Map<string, ParamRole> {
  const roles = new Map<string, ParamRole>();
  const set = (nodeName: string, input: string | undefined, role: ParamRole) => {
    if (!input) return;
    // An unfused export feeds a Linear on a channels-last map its weight through a Transpose at run time.
    const producer = graph.producer.get(input);
    const init = resolveInitializer(graph, input) ?? (producer?.opType === 'Transpose' && role === 'weight' ? resolveInitializer(graph, producer.inputs[0]!) : undefined);
    if (!init) return;
    const prev = roles.get(init);
    // A tensor that is both a weight and a running statistic cannot be trained (Identity-forwarded ones are
    // untied at load time; a direct double use is refused).
    if (prev && prev !== role && (prev === 'conv-weight' || role === 'conv-weight' || isRunningStatistic(prev) !== isRunningStatistic(role))) {
      throw new BadInputError(`${graph.file}: node '${nodeName}': initializer '${init}' is used both as a ${prev} and a ${role}`);
    }
    if (!prev) roles.set(init, role);
  };
  // Tensors computed by a layer with weights (or from one): an elementwise Mul or Add of such a tensor with a
  // float initializer of more than one value is an affine parameter (LayerNorm as primitives, ConvNeXt's
  // layer scale). Before any such layer (input normalisation baked into the graph) it stays a constant.
  const afterLayer = new Set<string>();
  const affine = (nodeName: string, operands: (string | undefined)[], role: ParamRole) => {
    const [a, b] = operands;
    for (const [data, other] of [[a, b], [b, a]] as const) {
      const init = other && !afterLayer.has(other) ? undefined : data && resolveInitializer(graph, data);
      const v = init ? graph.initializers.get(init) : undefined;
      if (v && v.dtype === 'float32' && v.data.length > 1) set(nodeName, data, role);
    }
  };
  for (const n of graph.nodes) {
    if (WEIGHTED_LAYERS.has(n.opType) || n.inputs.some((i) => i && afterLayer.has(i))) n.outputs.forEach((o) => o && afterLayer.add(o));
    switch (n.opType) {
      case 'Conv': set(n.name, n.inputs[1], 'conv-weight'); set(n.name, n.inputs[2], 'bias'); break;
      case 'Gemm': set(n.name, n.inputs[1], 'weight'); set(n.name, n.inputs[2], 'bias'); break;
      case 'MatMul': set(n.name, n.inputs[1], 'weight'); break;
      case 'PRelu': set(n.name, n.inputs[1], 'weight'); break; // PyTorch's nn.PReLU weight is a parameter
      case 'BatchNormalization':
        set(n.name, n.inputs[1], 'bn-scale'); set(n.name, n.inputs[2], 'bn-bias');
        set(n.name, n.inputs[3], 'bn-mean'); set(n.name, n.inputs[4], 'bn-var');
        break;
      case 'LayerNormalization': set(n.name, n.inputs[1], 'weight'); set(n.name, n.inputs[2], 'bias'); break;
      // The bias of a Linear exported as MatMul + Add, a LayerNorm's shift.
      case 'Add': affine(n.name, n.inputs, 'bias'); break;
      case 'Mul': affine(n.name, n.inputs, 'weight'); break;
    }
  }
  return roles;
}

export function createParameters(graph: Graph): Map<string, Parameter> {
  const params = new Map<string, Parameter>();
  for (const [name, role] of assignRoles(graph)) {
    const v: TensorValue = graph.initializers.get(name)!;
    if (v.dtype !== 'float32') throw new BadInputError(`${graph.file}: initializer '${name}' is ${v.dtype}; weights must be float32`);
    let t = tf.tensor(floatValues(v), v.dims, 'float32');
    if (role === 'conv-weight') {
      if (v.dims.length !== 4) throw new BadInputError(`${graph.file}: conv weight '${name}' has ${v.dims.length} dims; only 2-D convolutions are supported`);
      const nhwc = convWeightFromOnnx(t);
      t.dispose();
      t = nhwc;
    }
    const trainable = !isRunningStatistic(role);
    params.set(name, { name, role, trainable, variable: tf.variable(t, trainable), onnxDims: v.dims });
    t.dispose();
  }
  return params;
}

/** A parameter's current values in ONNX layout, ready to write back into its initializer. */
export function parameterToOnnx(p: Parameter): Float32Array {
  return onnxValues(p.variable, p.role === 'conv-weight');
}

/**
 * A copy of a parameter-shaped tensor's values in ONNX layout. Read outside tf.tidy on purpose: tidy walks
 * a returned typed array element by element into a Set, looking for tensors (11 M Set insertions per pass
 * over PreAct-ResNet-18's weights, ~270 MB of heap for its one 2.4 M-value conv weight alone).
 */
export function onnxValues(t: tf.Tensor, convWeight: boolean): Float32Array {
  if (!convWeight) return new Float32Array(t.dataSync());
  const o = convWeightToOnnx(t);
  try {
    return new Float32Array(o.dataSync());
  } finally {
    o.dispose();
  }
}

/** A conv weight (or a buffer shaped like one) from the stored [KH,KW,Ci,Co] layout to ONNX's [Co,Ci,KH,KW]. */
export function convWeightToOnnx(t: tf.Tensor): tf.Tensor {
  return tf.transpose(t, [3, 2, 0, 1]);
}

/** ONNX's [Co,Ci,KH,KW] to the stored [KH,KW,Ci,Co] layout that tf.conv2d takes. */
export function convWeightFromOnnx(t: tf.Tensor): tf.Tensor {
  return tf.transpose(t, [2, 3, 1, 0]);
}
