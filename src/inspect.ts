/** `inspect`: what the tool sees in a model (input, output, ops, parameters, taps, backend, training engine). */
import { useBackend, type BackendChoice } from './backend/select-backend.js';
import { TrainableModel } from './import/trainable-model.js';
import { crossEntropyTerm } from './training/loss/cross-entropy.js';
import { onnxruntimeCannotTrain } from './ort-training/training-graph.js';
import type { Tap, TapRule } from './import/taps.js';

export interface LayerSummary {
  op: string;
  name: string;
  output: string;
  shape: number[];
  tap: boolean;
}

export interface InspectResult {
  file: string;
  input: { name: string; shape: (number | string)[] };
  output: { name: string; shape: (number | string)[] };
  opset: number;
  ops: Record<string, number>;
  parameters: number;
  taps: { name: string; shape: [number, number, number]; rule: TapRule }[];
  backend: { name: string; reason: string };
  /** The engine `clean --engine auto` would train with, and why. */
  engine: { name: 'onnxruntime' | 'tfjs'; reason: string };
  layers: LayerSummary[];
}

export interface InspectOptions {
  backend?: BackendChoice;
  taps?: string[];
}

export async function inspect(path: string, opts: InspectOptions = {}): Promise<InspectResult> {
  const backend = await useBackend(opts.backend ?? 'auto');
  const model = TrainableModel.fromFile(path, opts.taps);
  try {
    const g = model.graph;
    const ops: Record<string, number> = {};
    for (const n of g.nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
    const tapNames = new Set(model.taps.map((t: Tap) => t.name));
    const shown = new Set(['Conv', 'Gemm', 'MatMul', 'BatchNormalization', 'Add', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Flatten', 'Reshape', 'Softmax', 'LogSoftmax', 'Concat']);
    const layers: LayerSummary[] = g.nodes
      .filter((n) => shown.has(n.opType) || n.outputs.some((o) => tapNames.has(o)))
      .map((n) => ({ op: n.opType, name: n.name, output: n.outputs[0]!, shape: model.shapes.get(n.outputs[0]!) ?? [], tap: n.outputs.some((o) => tapNames.has(o)) }));
    const out = g.outputs[0]!;
    const outShape = out.dims.length ? out.dims : (model.shapes.get(out.name) ?? []);
    return {
      file: path,
      input: { name: g.input.name, shape: g.input.dims },
      output: { name: out.name, shape: outShape },
      opset: g.opset,
      ops,
      parameters: model.parameterCount(),
      taps: model.taps.map((t) => ({ name: t.name, shape: t.shape, rule: t.rule })),
      backend: { name: backend.name, reason: backend.reason },
      engine: trainingEngine(model, backend.name),
      layers,
    };
  } finally {
    model.dispose();
  }
}

function trainingEngine(model: TrainableModel, backend: string): InspectResult['engine'] {
  if (backend === 'tensorflow-gpu') return { name: 'tfjs', reason: 'tfjs-node-gpu is installed' };
  const why = onnxruntimeCannotTrain(model, { terms: [crossEntropyTerm(model.numClasses)] });
  return why
    ? { name: 'tfjs', reason: `the onnxruntime engine cannot train it: ${why}` }
    : { name: 'onnxruntime', reason: 'every op of the graph has an onnxruntime-engine gradient' };
}

export function formatInspect(r: InspectResult): string {
  const lines: string[] = [];
  lines.push(`model      ${r.file} (opset ${r.opset})`);
  lines.push(`input      ${r.input.name} [${r.input.shape.join(', ')}]`);
  lines.push(`output     ${r.output.name} [${r.output.shape.join(', ')}]`);
  lines.push(`parameters ${r.parameters.toLocaleString('en-US')} trainable`);
  lines.push(`ops        ${Object.entries(r.ops).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push(`backend    ${r.backend.name} (${r.backend.reason})`);
  lines.push(`engine     ${r.engine.name} (${r.engine.reason})`);
  lines.push('');
  lines.push('layers (C x H x W; * = tap used for attention distillation)');
  for (const l of r.layers) {
    const s = l.shape.length === 4 ? `${l.shape[1]} x ${l.shape[2]} x ${l.shape[3]}` : `[${l.shape.slice(1).join(', ')}]`;
    lines.push(`  ${l.tap ? '*' : ' '} ${l.op.padEnd(20)} ${s.padEnd(16)} ${l.name}`);
  }
  lines.push('');
  const rules: Record<TapRule, string> = {
    residual: 'residual: the last residual block at each resolution',
    plain: 'plain: the last activation or concatenation on the main path at each resolution',
    named: 'named by --taps',
  };
  lines.push(`taps       ${r.taps.length ? r.taps.map((t) => `${t.name} (${t.shape.join('x')}, ${t.rule})`).join(', ') : 'none found (use --taps)'}`);
  for (const rule of new Set(r.taps.map((t) => t.rule))) lines.push(`           ${rules[rule]}`);
  return lines.join('\n');
}
