/** The classifier's final linear layer (the last Gemm or MatMul with a weight initializer): FST re-initialises and tunes it. */
import { BadInputError } from '../errors.js';
import { resolveInitializer } from '../import/parameters.js';
import type { TrainableModel } from '../import/trainable-model.js';

export interface FinalLinear {
  node: string;
  weight: string;
  bias?: string;
  /** Inputs per output unit (PyTorch's fan_in). */
  fanIn: number;
  /** The weight is stored [out, in] as PyTorch's (Gemm with transB), not [in, out] (MatMul). */
  outFirst: boolean;
}

export function findFinalLinear(model: TrainableModel): FinalLinear {
  const g = model.graph;
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (n.opType !== 'Gemm' && n.opType !== 'MatMul') continue;
    const weight = resolveInitializer(g, n.inputs[1] ?? '');
    const p = weight ? model.params.get(weight) : undefined;
    if (!weight || !p || p.onnxDims.length !== 2) continue;
    const transB = n.opType === 'Gemm' && n.attrs.int('transB', 0) === 1;
    const fanIn = transB ? p.onnxDims[1]! : p.onnxDims[0]!;
    let bias: string | undefined;
    if (n.opType === 'Gemm' && n.inputs[2]) bias = resolveInitializer(g, n.inputs[2]);
    else {
      const add = (g.consumers.get(n.outputs[0]!) ?? []).find((c) => c.opType === 'Add');
      const other = add?.inputs.find((x) => x !== n.outputs[0]);
      bias = other ? resolveInitializer(g, other) : undefined;
    }
    return { node: n.name, weight, bias: bias && model.params.has(bias) ? bias : undefined, fanIn, outFirst: transB };
  }
  throw new BadInputError(`${g.file}: no final linear layer (Gemm or MatMul with a weight initializer) for --method fst`);
}
