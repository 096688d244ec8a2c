/**
 * The part of a model after one of its tensors, as a model of its own: that tensor becomes the graph input
 * and the nodes and initializers that lead from it to the outputs are kept (the scan's feature-space
 * signal differentiates the classifier with respect to a feature map this way). Only a tensor every
 * input-to-output path runs through has such a tail; any other is refused.
 */
import { BadInputError } from '../errors.js';
import type { LoadedModel } from '../import/loaded-model.js';
import { onnxDataType } from '../import/tensor-data.js';
import { onnx, type NodeProto } from '../onnx/onnx-schema.js';

/** `from`: the tensor that becomes the input; `dims`: its ONNX shape for a batch of one (the batch axis becomes dynamic). */
export function tailModelBytes(source: LoadedModel, from: string, dims: number[]): Uint8Array {
  const g = source.proto.graph!;
  const outputs = (g.output ?? []).map((o) => o.name ?? '');
  const needed = new Set<string>(outputs);
  const kept: NodeProto[] = [];
  const nodes = g.node ?? [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!(n.output ?? []).some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const t of n.input ?? []) if (t && t !== from && !source.initializers.has(t)) needed.add(t);
  }
  kept.reverse();
  const produced = new Set(kept.flatMap((n) => n.output ?? []));
  const image = g.input?.[0]?.name;
  for (const t of needed) {
    if (!produced.has(t) && t !== from) {
      throw new BadInputError(`${source.path}: '${from}' does not separate the input from the outputs (the outputs also read '${t === image ? 'the input' : t}')`);
    }
  }
  const used = new Set(kept.flatMap((n) => n.input ?? []));
  const initializer = [...source.initializers].filter(([name]) => used.has(name)).map(([name, v]) => ({
    name, dims: v.dims, dataType: onnxDataType(v.dtype), rawData: new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength),
  }));
  const F = onnx.TensorProto.DataType.FLOAT;
  const proto = onnx.ModelProto.create({
    irVersion: source.proto.irVersion, opsetImport: source.proto.opsetImport, producerName: 'nad-onnx tail model',
    graph: {
      name: 'tail', node: kept, initializer,
      input: [{ name: from, type: { tensorType: { elemType: F, shape: { dim: dims.map((d, i) => (i === 0 ? { dimParam: 'N' } : { dimValue: d })) } } } }],
      output: g.output,
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}
