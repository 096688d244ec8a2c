/**
 * Runs an ONNX graph op by op as differentiable tfjs ops. Call it inside tf.tidy / tf.variableGrads:
 * it allocates freely and leaves disposal to the caller's scope.
 */
import * as tf from '../tf.js';
import { BadInputError } from '../errors.js';
import type { Graph, GraphNode } from './graph.js';
import { nchw, onnxShape } from './ops/layout.js';
import type { OpContext, RestoredBatchNorm, RunningStatUpdate, Value } from './ops/op-types.js';
import { CONVERTERS, SUPPORTED_OPS } from './ops/registry.js';
import { tensorFromValue } from './ops/shape-ops.js';
import { convWeightToOnnx, resolveInitializer, type Parameter } from './parameters.js';
import { intValues, type TensorValue } from './tensor-data.js';

export interface RunOptions {
  training: boolean;
  /** BatchNormalization uses batch statistics (true in training unless told otherwise). */
  bnUsesBatchStats?: boolean;
  /** Tensor names whose values the caller wants besides the graph outputs. */
  capture?: readonly string[];
  /** Stop as soon as these tensors exist (e.g. only the taps are needed). */
  stopAfter?: readonly string[];
  /** In training: Dropout masks by node name (import/ops/dropout.ts). */
  dropoutMasks?: ReadonlyMap<string, tf.Tensor>;
  /**
   * Inference outside any gradient tape only: run each node in its own tf.tidy and dispose a tensor after
   * its last reader. Otherwise every activation of the pass lives until the caller's scope ends, and the
   * wasm heap, which never shrinks, keeps that size for the rest of the run (PreAct-ResNet-18's BatchNorm
   * calibration, 32 images a pass: 545 MB of wasm heap).
   */
  release?: boolean;
}

export interface RunResult {
  outputs: Value[];
  captured: Map<string, Value>;
  statUpdates: RunningStatUpdate[];
  /** ONNX (NCHW) shape of every tensor computed, for shape inference. */
  shapes?: Map<string, number[]>;
}

/** Values of Constant nodes, known before running. */
export function constantNodeValue(node: GraphNode, where: string): TensorValue {
  const a = node.attrs;
  const t = a.tensor('value');
  if (t) return t;
  const raw = (name: string) => a.raw(name);
  if (raw('value_float')) return { dtype: 'float32', dims: [], data: Float32Array.of(a.float('value_float', 0)) };
  if (raw('value_floats')) { const f = raw('value_floats')!.floats ?? []; return { dtype: 'float32', dims: [f.length], data: Float32Array.from(f) }; }
  if (raw('value_int')) return { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(a.int('value_int', 0))) };
  if (raw('value_ints')) { const v = a.ints('value_ints', [])!; return { dtype: 'int64', dims: [v.length], data: BigInt64Array.from(v.map(BigInt)) }; }
  throw new BadInputError(`${where}: unsupported Constant (needs value, value_float(s) or value_int(s))`);
}

/** tf.tidy around a converter: its output tensors survive, every other tensor it made is disposed. */
function tidyValues(convert: () => Value[]): Value[] {
  let outs: Value[] = [];
  tf.tidy(() => {
    outs = convert();
    return outs.flatMap((v) => (v ? [v.t] : []));
  });
  return outs;
}

export class GraphRunner {
  /** Static values: initializers and Constant outputs. */
  readonly constants = new Map<string, TensorValue>();
  /** BatchNorms restored in front of folded conv biases, by node name. */
  readonly restored = new Map<string, RestoredBatchNorm>();
  private readonly constTensors = new Map<string, tf.Tensor>();

  constructor(readonly graph: Graph, readonly params: Map<string, Parameter>) {
    for (const [k, v] of graph.initializers) this.constants.set(k, v);
    for (const n of graph.nodes) {
      if (!CONVERTERS[n.opType] || (n.domain && n.domain !== 'ai.onnx')) {
        throw new BadInputError(
          `${graph.file}: node '${n.name}' has unsupported op type '${n.domain ? n.domain + '.' : ''}${n.opType}' (supported: ${SUPPORTED_OPS.join(', ')})`,
        );
      }
      if (n.opType === 'Constant') this.constants.set(n.outputs[0]!, constantNodeValue(n, `${graph.file}: node '${n.name}'`));
    }
  }

  private constTensor(name: string, where: string): tf.Tensor {
    let t = this.constTensors.get(name);
    if (!t) {
      t = tf.keep(tensorFromValue(this.constants.get(name)!, where));
      this.constTensors.set(name, t);
    }
    return t;
  }

  /** x: the input batch, NHWC float32 (as images decode) for 4-D inputs. */
  run(x: tf.Tensor, opts: RunOptions, recordShapes = false): RunResult {
    const g = this.graph;
    const values = new Map<string, Value>();
    values.set(g.input.name, { t: x, nhwc: x.rank === 4 });
    const statUpdates: RunningStatUpdate[] = [];
    const shapes = recordShapes ? new Map<string, number[]>() : undefined;
    const stop = opts.stopAfter ? new Set(opts.stopAfter) : undefined;
    const bnUsesBatchStats = opts.bnUsesBatchStats ?? opts.training;
    const releaseAfter = opts.release ? this.lastReads([g.input.name, ...g.outputs.map((o) => o.name), ...(opts.capture ?? []), ...(opts.stopAfter ?? [])]) : undefined;

    const get = (name: string, where: string): Value => {
      const v = values.get(name);
      if (v) return v;
      const p = this.params.get(name);
      if (p) {
        // A parameter read as a plain input (not in its op's weight slot): ONNX layout.
        const t = p.role === 'conv-weight' ? convWeightToOnnx(p.variable) : p.variable;
        return { t, nhwc: false };
      }
      if (this.constants.has(name)) return { t: this.constTensor(name, where), nhwc: false };
      throw new BadInputError(`${where}: input '${name}' is not available`);
    };

    for (const node of g.nodes) {
      const where = `${g.file}: node '${node.name}' (${node.opType})`;
      let outs: Value[];
      if (node.opType === 'Constant') {
        outs = [{ t: this.constTensor(node.outputs[0]!, where), nhwc: false }];
      } else {
        const ctx: OpContext = {
          node,
          where,
          training: opts.training,
          opset: g.opset,
          bnUsesBatchStats,
          input: (i) => {
            const name = node.inputs[i];
            if (!name) throw new BadInputError(`${where}: missing input ${i}`);
            return get(name, where);
          },
          optionalInput: (i) => (node.inputs[i] ? get(node.inputs[i]!, where) : undefined),
          constant: (i) => (i < 0 ? this.constants.get(node.outputs[0]!) : node.inputs[i] ? this.constants.get(node.inputs[i]!) : undefined),
          ints: (i) => {
            const name = node.inputs[i];
            if (!name) return undefined;
            const c = this.constants.get(name);
            if (c) return intValues(c);
            return Array.from(nchw(get(name, where)).dataSync(), Number);
          },
          param: (i) => {
            const name = node.inputs[i];
            if (!name) return undefined;
            const init = resolveInitializer(g, name);
            const p = init ? this.params.get(init) : undefined;
            if (p) return p.variable;
            if (init) return this.constTensor(init, where);
            return undefined;
          },
          addRunningStatUpdate: (u) => statUpdates.push(u),
          restoredBatchNorm: this.restored.get(node.name),
          dropoutMask: opts.training ? opts.dropoutMasks?.get(node.name) : undefined,
        };
        try {
          const convert = () => CONVERTERS[node.opType]!(ctx);
          outs = opts.release ? tidyValues(convert) : convert();
        } catch (e) {
          if (e instanceof BadInputError) throw e;
          const msg = (e as Error).message ?? String(e);
          throw new BadInputError(msg.startsWith(g.file) ? msg : `${where}: ${msg.split('\n')[0]}`);
        }
      }
      node.outputs.forEach((o, i) => {
        if (o && outs[i]) {
          values.set(o, outs[i]!);
          shapes?.set(o, onnxShape(outs[i]!));
        }
      });
      const done = releaseAfter?.get(node);
      if (done) this.release(done, values);
      if (stop && [...stop].every((s) => values.has(s))) break;
    }
    const captured = new Map<string, Value>();
    for (const c of opts.capture ?? []) {
      const v = values.get(c);
      if (!v) throw new BadInputError(`${g.file}: tensor '${c}' is not computed by the graph`);
      captured.set(c, v);
    }
    const outputs = stop ? [] : g.outputs.map((o) => get(o.name, `${g.file}: output '${o.name}'`));
    return { outputs, captured, statUpdates, shapes };
  }

  /** Per node, the tensor names it is the last reader of; `keep` never appears. */
  private lastReads(keep: string[]): Map<GraphNode, string[]> {
    const last = new Map<string, GraphNode>();
    for (const n of this.graph.nodes) for (const name of n.inputs) if (name) last.set(name, n);
    for (const k of keep) last.delete(k);
    const byNode = new Map<GraphNode, string[]>();
    for (const [name, n] of last) byNode.set(n, [...(byNode.get(n) ?? []), name]);
    return byNode;
  }

  /** Disposes the tensors of `names`, unless they are variables, constants or still held under another name. */
  private release(names: string[], values: Map<string, Value>): void {
    for (const name of names) {
      const v = values.get(name);
      if (!v) continue;
      values.delete(name);
      const shared = v.t instanceof tf.Variable || [...this.constTensors.values()].includes(v.t) || [...values.values()].some((u) => u.t === v.t);
      if (!shared) v.t.dispose();
    }
  }

  dispose(): void {
    for (const t of this.constTensors.values()) t.dispose();
    this.constTensors.clear();
  }
}
