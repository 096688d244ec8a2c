/** Gradient builder per ONNX op type (BatchNormalization, Conv with a restored BatchNorm and MaxPool are emitted by training-graph.ts, which keeps their forward intermediates). */
import { convGradient } from './conv.js';
import { addGradient, identityGradient, reluGradient } from './elementwise.js';
import { gemmGradient } from './gemm.js';
import { matMulGradient } from './matmul.js';
import type { GradientBuilder } from './gradient-types.js';
import { averagePoolGradient, globalAveragePoolGradient, globalMaxPoolGradient } from './pooling.js';
import { reduceMaxGradient, reduceMeanGradient, reduceSumGradient } from './reductions.js';
import { absGradient, expGradient, logGradient, negGradient, powGradient, sqrtGradient } from './unary-math.js';
import { maxGradient, minGradient } from './max-min.js';
import { preluGradient } from './prelu.js';
import { sliceGradient } from './slice.js';
import { erfGradient } from './erf.js';
import { splitGradient } from './split.js';
import { expandGradient } from './expand.js';
import { whereGradient } from './where.js';
import { layerNormalizationGradient } from './layer-normalization.js';
import { eluGradient, seluGradient } from './elu.js';
import { hardSigmoidGradient, hardSwishGradient } from './hard-sigmoid.js';
import { softplusGradient, tanhGradient } from './tanh.js';
import { concatGradient, padGradient, reshapeGradient, squeezeGradient, transposeGradient } from './shape.js';
import { clipGradient, leakyReluGradient, logSoftmaxGradient, sigmoidGradient, softmaxGradient } from './activations.js';
import { divGradient, mulGradient, subGradient } from './arithmetic.js';

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
  Squeeze: squeezeGradient,
  Unsqueeze: squeezeGradient,
  Dropout: identityGradient,
  Transpose: transposeGradient,
  Concat: concatGradient,
  Pad: padGradient,
  LeakyRelu: leakyReluGradient,
  Clip: clipGradient,
  Sigmoid: sigmoidGradient,
  Softmax: softmaxGradient,
  LogSoftmax: logSoftmaxGradient,
  Sub: subGradient,
  Mul: mulGradient,
  Div: divGradient,
  AveragePool: averagePoolGradient,
  GlobalMaxPool: globalMaxPoolGradient,
  ReduceMean: reduceMeanGradient,
  Elu: eluGradient,
  Selu: seluGradient,
  HardSigmoid: hardSigmoidGradient,
  HardSwish: hardSwishGradient,
  Tanh: tanhGradient,
  Softplus: softplusGradient,
  ReduceSum: reduceSumGradient,
  Neg: negGradient,
  Sqrt: sqrtGradient,
  Exp: expGradient,
  Log: logGradient,
  Max: maxGradient,
  Min: minGradient,
  PRelu: preluGradient,
  Slice: sliceGradient,
  Abs: absGradient,
  Pow: powGradient,
  Erf: erfGradient,
  Split: splitGradient,
  Expand: expandGradient,
  Where: whereGradient,
  ReduceMax: reduceMaxGradient,
  LayerNormalization: layerNormalizationGradient,
};

/** Ops whose outputs carry no gradient (shapes, sizes, constants, booleans). */
export const NON_DIFFERENTIABLE = new Set(['Shape', 'Size', 'Constant', 'ConstantOfShape', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not']);
