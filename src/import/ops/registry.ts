/** ONNX op type -> converter. An op missing here is refused with the list below. */
import * as act from './activations.js';
import { batchNormalization } from './batch-normalization.js';
import { conv } from './conv.js';
import * as ew from './elementwise.js';
import { gemm, matMul } from './gemm.js';
import type { OpConverter } from './op-types.js';
import { pad } from './pad.js';
import * as pool from './pooling.js';
import { reduceMean } from './reduce-mean.js';
import { elu } from './elu.js';
import { selu } from './selu.js';
import { hardSigmoid } from './hard-sigmoid.js';
import { hardSwish } from './hard-swish.js';
import { tanh } from './tanh.js';
import { softplus } from './softplus.js';
import { neg } from './neg.js';
import { sqrt } from './sqrt.js';
import { exp } from './exp.js';
import { log } from './log.js';
import { abs } from './abs.js';
import { pow } from './pow.js';
import { max, min } from './max-min.js';
import { prelu } from './prelu.js';
import { slice } from './slice.js';
import { erf } from './erf.js';
import { split } from './split.js';
import { expand } from './expand.js';
import { where } from './where.js';
import * as cmp from './comparison.js';
import { layerNormalization } from './layer-normalization.js';
import { dropout } from './dropout.js';
import { reduceSum } from './reduce-sum.js';
import { reduceMax } from './reduce-max.js';
import * as shp from './shape-ops.js';

export const CONVERTERS: Readonly<Record<string, OpConverter>> = {
  Conv: conv,
  BatchNormalization: batchNormalization,
  Relu: act.relu,
  LeakyRelu: act.leakyRelu,
  Clip: act.clip,
  Sigmoid: act.sigmoid,
  Softmax: act.softmax,
  LogSoftmax: act.logSoftmax,
  Elu: elu,
  Selu: selu,
  HardSigmoid: hardSigmoid,
  HardSwish: hardSwish,
  Tanh: tanh,
  Softplus: softplus,
  Neg: neg,
  Sqrt: sqrt,
  Exp: exp,
  Log: log,
  Abs: abs,
  Pow: pow,
  Max: max,
  Min: min,
  PRelu: prelu,
  Slice: slice,
  Erf: erf,
  Split: split,
  Expand: expand,
  Where: where,
  Equal: cmp.equal,
  Greater: cmp.greater,
  Less: cmp.less,
  GreaterOrEqual: cmp.greaterOrEqual,
  LessOrEqual: cmp.lessOrEqual,
  Not: cmp.not,
  ReduceSum: reduceSum,
  ReduceMax: reduceMax,
  LayerNormalization: layerNormalization,
  Add: ew.add,
  Sub: ew.sub,
  Mul: ew.mul,
  Div: ew.div,
  GlobalAveragePool: pool.globalAveragePool,
  GlobalMaxPool: pool.globalMaxPool,
  AveragePool: pool.averagePool,
  MaxPool: pool.maxPool,
  Flatten: shp.flatten,
  Reshape: shp.reshape,
  Shape: shp.shape,
  Gather: shp.gather,
  Unsqueeze: shp.unsqueeze,
  Squeeze: shp.squeeze,
  Concat: shp.concat,
  Transpose: shp.transpose,
  Cast: shp.cast,
  Identity: shp.identity,
  Dropout: dropout,
  Constant: shp.constant,
  ReduceMean: reduceMean,
  Gemm: gemm,
  MatMul: matMul,
  Pad: pad,
};

export const SUPPORTED_OPS = Object.keys(CONVERTERS).sort();
