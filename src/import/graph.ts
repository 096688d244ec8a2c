/**
 * A checked, topologically ordered view of an ONNX graph: nodes with typed attribute access, the
 * graph input fed by the user, constants known before run time, and who consumes what.
 */
import { BadInputError } from '../errors.js';
import { AttributeType, type AttributeProto, type NodeProto, type ValueInfoProto } from '../onnx/onnx-schema.js';
import { decodeTensor, toNumber, type TensorValue } from './tensor-data.js';
import type { LoadedModel } from './load-model.js';

/** Upper bound on graph size checked before any per-node work. */
export const MAX_NODES = 100_000;

export class Attrs {
  private readonly map = new Map<string, AttributeProto>();
  constructor(private readonly where: string, attrs: AttributeProto[]) {
    for (const a of attrs) this.map.set(a.name ?? '', a);
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  int(name: string, dflt: number): number {
    const a = this.map.get(name);
    if (!a) return dflt;
    const v = toNumber(a.i);
    if (!Number.isFinite(v)) throw new BadInputError(`${this.where}: attribute ${name} out of range`);
    return v;
  }
  float(name: string, dflt: number): number {
    const a = this.map.get(name);
    return a ? (a.f ?? dflt) : dflt;
  }
  ints(name: string, dflt: number[] | undefined): number[] | undefined {
    const a = this.map.get(name);
    if (!a) return dflt;
    const v = (a.ints ?? []).map(toNumber);
    if (v.some((x) => !Number.isFinite(x))) throw new BadInputError(`${this.where}: attribute ${name} out of range`);
    return v;
  }
  string(name: string, dflt: string): string {
    const a = this.map.get(name);
    return a && a.s ? new TextDecoder().decode(a.s) : dflt;
  }
  tensor(name: string): TensorValue | undefined {
    const a = this.map.get(name);
    if (!a) return undefined;
    if (a.type === AttributeType.TENSOR || a.t) return decodeTensor(a.t!, `${this.where}: attribute ${name}`);
    return undefined;
  }
  raw(name: string): AttributeProto | undefined {
    return this.map.get(name);
  }
}

export interface GraphNode {
  index: number; // position in the file
  name: string; // node name, or a generated label when the file has none
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
  proto: NodeProto;
}

export interface TensorInfo {
  name: string;
  elemType: number;
  /** Dimensions: numbers, or the symbolic name (e.g. 'batch') where the file gives one. */
  dims: (number | string)[];
}

export interface Graph {
  file: string;
  nodes: GraphNode[]; // topological order
  input: TensorInfo; // the one graph input not backed by an initializer
  outputs: TensorInfo[];
  initializers: Map<string, TensorValue>;
  producer: Map<string, GraphNode>;
  consumers: Map<string, GraphNode[]>;
  opset: number;
}

function tensorInfo(v: ValueInfoProto): TensorInfo {
  const tt = v.type?.tensorType;
  const dims = (tt?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue != null ? toNumber(d.dimValue) : '?'));
  return { name: v.name ?? '', elemType: tt?.elemType ?? 0, dims };
}

export function buildGraph(model: LoadedModel): Graph {
  const file = model.path;
  const g = model.proto.graph!;
  const protoNodes = g.node ?? [];
  if (protoNodes.length > MAX_NODES) throw new BadInputError(`${file}: graph has ${protoNodes.length} nodes (limit ${MAX_NODES})`);
  const initNames = new Set(model.initializers.keys());
  const realInputs = (g.input ?? []).filter((i) => !initNames.has(i.name ?? ''));
  if (realInputs.length !== 1) {
    throw new BadInputError(`${file}: expected one image input, the graph has ${realInputs.length} (${realInputs.map((i) => i.name).join(', ')})`);
  }
  const input = tensorInfo(realInputs[0]!);
  const outputs = (g.output ?? []).map(tensorInfo);

  const nodes: GraphNode[] = protoNodes.map((n, index) => {
    const name = n.name || `${n.opType ?? '?'}#${index}`;
    return {
      index,
      name,
      opType: n.opType ?? '',
      domain: n.domain ?? '',
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attrs: new Attrs(`${file}: node '${name}' (${n.opType})`, n.attribute ?? []),
      proto: n,
    };
  });

  const producer = new Map<string, GraphNode>();
  for (const n of nodes) {
    for (const o of n.outputs) {
      if (!o) continue;
      if (producer.has(o) || initNames.has(o) || o === input.name) {
        throw new BadInputError(`${file}: node '${n.name}': tensor '${o}' is produced more than once`);
      }
      producer.set(o, n);
    }
  }
  const known = new Set<string>([...initNames, input.name, '']);
  for (const n of nodes) {
    for (const i of n.inputs) {
      if (!known.has(i) && !producer.has(i)) {
        throw new BadInputError(`${file}: node '${n.name}' reads '${i}', which no node, input or initializer defines`);
      }
    }
  }
  for (const o of outputs) {
    if (!producer.has(o.name) && !initNames.has(o.name) && o.name !== input.name) {
      throw new BadInputError(`${file}: graph output '${o.name}' is never produced`);
    }
  }

  // Kahn's algorithm, stable in file order; a leftover node means a cycle.
  const indeg = new Map<GraphNode, number>();
  const consumers = new Map<string, GraphNode[]>();
  for (const n of nodes) {
    let d = 0;
    for (const i of new Set(n.inputs)) {
      if (producer.has(i)) d++;
      if (!consumers.has(i)) consumers.set(i, []);
      consumers.get(i)!.push(n);
    }
    indeg.set(n, d);
  }
  const ready = nodes.filter((n) => indeg.get(n) === 0);
  const order: GraphNode[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => a.index - b.index);
    const n = ready.shift()!;
    order.push(n);
    for (const o of n.outputs) {
      for (const c of consumers.get(o) ?? []) {
        const d = indeg.get(c)! - 1;
        indeg.set(c, d);
        if (d === 0) ready.push(c);
      }
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.find((n) => indeg.get(n)! > 0)!;
    throw new BadInputError(`${file}: graph has a cycle (through node '${stuck.name}')`);
  }
  return { file, nodes: order, input, outputs, initializers: model.initializers, producer, consumers, opset: model.opset };
}

/** C, H, W of the image input, which must be N x C x H x W with fixed C, H, W. */
export function imageInputShape(graph: Graph): [number, number, number] {
  const dims = graph.input.dims;
  if (dims.length !== 4 || dims.slice(1).some((d) => typeof d !== 'number' || d <= 0)) {
    throw new BadInputError(`${graph.file}: input '${graph.input.name}' must be N x C x H x W with fixed C, H, W (got [${dims.join(', ')}])`);
  }
  return dims.slice(1) as [number, number, number];
}
