/** Gradient builder per ONNX op type (BatchNormalization, Conv with a restored BatchNorm and MaxPool are emitted by training-graph.ts, which keeps their forward intermediates). */
import { convGradient } from './conv.js';
import { addGradient, identityGradient, reluGradient } from './elementwise.js';
import { gemmGradient, matMulGradient } from './gemm.js';
import type { GradientBuilder } from './gradient-types.js';
import { globalAveragePoolGradient } from './pooling.js';
import { reshapeGradient } from './shape.js';

export const GRADIENTS: Record<string, GradientBuilder> = {
  Conv: convGradient,
  Relu: reluGradient,
  Add: addGradient,
  Identity: identityGradient,
  GlobalAveragePool: globalAveragePoolGradient,
  Gemm: gemmGradient,
  MatMul: matMulGradient,
  Reshape: reshapeGradient,
  Flatten: reshapeGradient,
};

/** Ops whose outputs carry no gradient (shapes, sizes, constants). */
export const NON_DIFFERENTIABLE = new Set(['Shape', 'Size', 'Constant', 'ConstantOfShape']);
