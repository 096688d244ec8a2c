/**
 * Taps found from the graph's structure (never from node names), one per spatial resolution, skipping
 * 1x1 maps (a 1x1 attention map is constant after normalisation). Two rules:
 * - residual: the output of the last residual block at each resolution. A residual block ends in an Add of
 *   two computed maps of equal shape, optionally followed by its activation (post-activation blocks such as
 *   torchvision's ResNet). Where that finds fewer than two resolutions, the plain rule adds the others.
 * - plain, for networks without residual blocks (VGG-style CNNs, DenseNet, SqueezeNet): the last activation
 *   or channel concatenation at each resolution on the main path, i.e. the feature map a stage hands to its
 *   downsampling (pooling, strided conv, transition); a pooling output where a resolution has nothing else.
 *   On the main path means every path from the input to the output runs through it, so a branch inside a
 *   block (a Fire module's expand branches) is never chosen; the classifier's own maps (after the last
 *   weighted layer) are not features.
 */
import { BadInputError } from '../errors.js';
import type { Graph, GraphNode } from './graph.js';

export type TapRule = 'residual' | 'plain' | 'named';

export interface Tap {
  name: string; // tensor name in the ONNX graph
  shape: [number, number, number]; // C x H x W
  /** Which rule found it ('named': --taps). */
  rule: TapRule;
}

/**
 * Tensors that every path from the input to the outputs runs through: in graph (topological) order, the
 * tensor produced at step i is one when no other feature tensor produced up to i is still read after i.
 * Only tensors of rank 2 or more count (shape arithmetic is not a path of features).
 */
function mainPath(graph: Graph, shapes: Map<string, number[]>): Set<string> {
  const lastUse = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.inputs.forEach((t) => t && lastUse.set(t, i)));
  const isFeature = (t: string) => (shapes.get(t)?.length ?? 0) >= 2;
  const cut = new Set<string>();
  // The latest step at which a feature tensor produced so far is read.
  let live = (isFeature(graph.input.name) ? lastUse.get(graph.input.name) : undefined) ?? -1;
  graph.nodes.forEach((n, i) => {
    const outs = n.outputs.filter((o) => o && isFeature(o));
    if (outs.length === 1 && live <= i) cut.add(outs[0]!);
    for (const o of outs) live = Math.max(live, lastUse.get(o) ?? -1);
  });
  return cut;
}

const ACTIVATIONS = new Set(['Relu', 'LeakyRelu', 'Clip']);
/** Where a stage of a network without residual blocks ends (pooling: a resolution with nothing else, ShuffleNet's stem). */
const STAGE_ENDS = new Set(['Relu', 'LeakyRelu', 'Clip', 'Elu', 'Selu', 'PRelu', 'HardSwish', 'Tanh', 'Concat', 'MaxPool', 'AveragePool']);
const POOLING = new Set(['MaxPool', 'AveragePool']);

/** Tensors from which one of `ops` still follows. */
function followedBy(graph: Graph, ops: Set<string>): Set<string> {
  const before = new Set<string>();
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (ops.has(n.opType) || n.outputs.some((o) => o && before.has(o))) n.inputs.forEach((t) => t && before.add(t));
  }
  return before;
}

export function findTaps(graph: Graph, shapes: Map<string, number[]>): Tap[] {
  const order = new Map(graph.nodes.flatMap((n, i) => n.outputs.map((o) => [o, i] as const)));
  const residual = lastPerResolution(residualBlockOutputs(graph, shapes), shapes, 'residual');
  if (residual.length >= 2) return residual;
  // Fewer than two residual resolutions (a narrow EfficientNet, MobileNet at a small input): the plain rule
  // fills the resolutions that have no residual block.
  const taken = new Set(residual.map((t) => `${t.shape[1]}x${t.shape[2]}`));
  const plain = lastPerResolution(plainStageEnds(graph, shapes), shapes, 'plain').filter((t) => !taken.has(`${t.shape[1]}x${t.shape[2]}`));
  return [...residual, ...plain].sort((x, y) => order.get(x.name)! - order.get(y.name)!);
}

/** Outputs of residual blocks: an Add of two computed maps of equal shape, with the activation that follows it. */
function residualBlockOutputs(graph: Graph, shapes: Map<string, number[]>): string[] {
  const isComputed = (n: string) => graph.producer.has(n) || n === graph.input.name;
  const outs: string[] = [];
  for (const node of graph.nodes) {
    if (node.opType !== 'Add' || node.inputs.length !== 2) continue;
    const [a, b] = node.inputs as [string, string];
    if (!isComputed(a) || !isComputed(b) || graph.producer.get(a)?.opType === 'Constant' || graph.producer.get(b)?.opType === 'Constant') continue;
    const sa = shapes.get(a), sb = shapes.get(b);
    if (!sa || !sb || sa.length !== 4 || sa.join() !== sb.join()) continue;
    let out = node.outputs[0]!;
    const users = graph.consumers.get(out) ?? [];
    if (users.length === 1 && ACTIVATIONS.has(users[0]!.opType) && !graph.outputs.some((o) => o.name === out)) {
      out = users[0]!.outputs[0]!;
    }
    outs.push(out);
  }
  return outs;
}

/**
 * Stage ends of the plain rule: activations (SiLU too: x * Sigmoid(x)) and concatenations on the main path,
 * not the classifier's own maps (nothing weighted follows them), and a pooling output only where a
 * convolution stage still follows it (not the map a VGG flattens into its classifier). A resolution whose
 * main path has none of these (a linear bottleneck between blocks) falls back to its last convolution.
 */
function plainStageEnds(graph: Graph, shapes: Map<string, number[]>): string[] {
  const main = mainPath(graph, shapes), features = followedBy(graph, new Set(['Conv', 'Gemm', 'MatMul'])), convInput = followedBy(graph, new Set(['Conv']));
  const isSilu = (n: GraphNode) => n.opType === 'Mul' && n.inputs.some((i) => graph.producer.get(i)?.opType === 'Sigmoid' && graph.producer.get(i)!.inputs[0] === n.inputs.find((j) => j !== i));
  const ends: string[] = [], convs: string[] = [];
  for (const node of graph.nodes) {
    const out = node.outputs[0];
    const s = out ? shapes.get(out) : undefined;
    if (!out || s?.length !== 4 || !main.has(out) || !features.has(out)) continue;
    if ((STAGE_ENDS.has(node.opType) && (!POOLING.has(node.opType) || convInput.has(out))) || isSilu(node)) ends.push(out);
    else if (node.opType === 'Conv') convs.push(out);
  }
  const res = (o: string) => shapes.get(o)!.slice(2).join('x');
  const covered = new Set(ends.map(res));
  const order = new Map(graph.nodes.flatMap((n, i) => n.outputs.map((o) => [o, i] as const)));
  return [...ends, ...convs.filter((o) => !covered.has(res(o)))].sort((a, b) => order.get(a)! - order.get(b)!);
}

/** The last candidate at each resolution larger than 1x1, in graph order. */
function lastPerResolution(candidates: string[], shapes: Map<string, number[]>, rule: TapRule): Tap[] {
  const lastAt = new Map<string, string>();
  for (const o of candidates) {
    const s = shapes.get(o)!;
    if (s[2]! * s[3]! <= 1) continue;
    lastAt.set(`${s[2]}x${s[3]}`, o);
  }
  const order = new Map(candidates.map((o, i) => [o, i]));
  return [...lastAt.values()]
    .sort((x, y) => order.get(x)! - order.get(y)!)
    .map((name) => {
      const s = shapes.get(name)!;
      return { name, shape: [s[1]!, s[2]!, s[3]!] as [number, number, number], rule };
    });
}

/** Taps named by the user (--taps), checked to be spatial maps of the graph. */
export function namedTaps(graph: Graph, shapes: Map<string, number[]>, names: string[]): Tap[] {
  return names.map((name) => {
    const s = shapes.get(name);
    if (!s) throw new BadInputError(`--taps: '${name}' is not a tensor of ${graph.file}`);
    if (s.length !== 4) throw new BadInputError(`--taps: '${name}' has shape [${s}], not a C x H x W map`);
    if (s[2]! * s[3]! <= 1) throw new BadInputError(`--taps: '${name}' is a 1x1 map; its attention map carries no information`);
    return { name, shape: [s[1]!, s[2]!, s[3]!] as [number, number, number], rule: 'named' as const };
  });
}
