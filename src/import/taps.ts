/**
 * Residual-group taps, found from the graph's structure (never from node names): the output of the last
 * residual block at each spatial resolution, skipping 1x1 maps (a 1x1 attention map is constant after
 * normalisation). A residual block ends in an Add of two computed maps of equal shape, optionally followed
 * by its activation (post-activation blocks such as torchvision's ResNet). A network without residual
 * blocks (a plain VGG-style CNN, DenseNet, SqueezeNet) is tapped at the last activation or channel
 * concatenation of each resolution: the feature map each stage hands to the next.
 */
import { BadInputError } from '../errors.js';
import type { Graph } from './graph.js';

export interface Tap {
  name: string; // tensor name in the ONNX graph
  shape: [number, number, number]; // C x H x W
}

const ACTIVATIONS = new Set(['Relu', 'LeakyRelu', 'Clip']);
/** Where a stage of a network without residual blocks ends. */
const STAGE_ENDS = new Set(['Relu', 'LeakyRelu', 'Clip', 'Elu', 'Selu', 'PRelu', 'HardSwish', 'Tanh', 'Concat']);

export function findTaps(graph: Graph, shapes: Map<string, number[]>): Tap[] {
  const isComputed = (n: string) => graph.producer.has(n) || n === graph.input.name;
  const blockOutputs: string[] = [];
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
    blockOutputs.push(out);
  }
  if (blockOutputs.length === 0) {
    for (const node of graph.nodes) {
      const out = node.outputs[0];
      const s = out ? shapes.get(out) : undefined;
      if (STAGE_ENDS.has(node.opType) && s?.length === 4 && !graph.outputs.some((o) => o.name === out)) blockOutputs.push(out!);
    }
  }
  // Last block output per resolution, in graph order.
  const lastAt = new Map<string, string>();
  for (const o of blockOutputs) {
    const s = shapes.get(o)!;
    if (s[2]! * s[3]! <= 1) continue;
    lastAt.set(`${s[2]}x${s[3]}`, o);
  }
  const order = new Map(blockOutputs.map((o, i) => [o, i]));
  return [...lastAt.values()]
    .sort((x, y) => order.get(x)! - order.get(y)!)
    .map((name) => {
      const s = shapes.get(name)!;
      return { name, shape: [s[1]!, s[2]!, s[3]!] as [number, number, number] };
    });
}

/** Taps named by the user (--taps), checked to be spatial maps of the graph. */
export function namedTaps(graph: Graph, shapes: Map<string, number[]>, names: string[]): Tap[] {
  return names.map((name) => {
    const s = shapes.get(name);
    if (!s) throw new BadInputError(`--taps: '${name}' is not a tensor of ${graph.file}`);
    if (s.length !== 4) throw new BadInputError(`--taps: '${name}' has shape [${s}], not a C x H x W map`);
    if (s[2]! * s[3]! <= 1) throw new BadInputError(`--taps: '${name}' is a 1x1 map; its attention map carries no information`);
    return { name, shape: [s[1]!, s[2]!, s[3]!] as [number, number, number] };
  });
}
