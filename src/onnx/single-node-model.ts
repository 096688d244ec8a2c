/** A one-node float32 model, for probing what the installed onnxruntime can load and run. */
import { onnx } from './onnx-schema.js';

export function singleNodeModel(op: { opType: string; domain?: string; opset?: number }, inputDims: number[]): Uint8Array {
  const vi = (name: string, dims?: number[]) => ({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined } } });
  const domain = op.domain ?? '';
  return onnx.ModelProto.encode({
    irVersion: 8, opsetImport: [{ domain: '', version: 13 }, ...(domain ? [{ domain, version: op.opset ?? 1 }] : [])],
    graph: { name: 'probe', node: [{ opType: op.opType, domain, input: ['x'], output: ['y'] }], input: [vi('x', inputDims)], output: [vi('y')] },
  }).finish();
}
