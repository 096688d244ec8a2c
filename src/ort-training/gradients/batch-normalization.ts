/**
 * Train-mode BatchNormalization with as few full-size passes as the algebra allows (each one is a memory
 * pass that onnxruntime runs as its own kernel):
 *   forward:  mean = E[x],  xc = x - mean,  var = E[xc^2] (two-pass),
 *             y = BatchNormalization(x; gamma, beta, mean, var) in inference form, one fused pass;
 *   backward: with inv = 1 / sqrt(var + eps) and a = gamma * inv,
 *             dx = (dy - (mean(dy) + xc * k)) * a,  k = inv^2 * mean(dy * xc), in PyTorch's order; the
 *             inner bracket is a per-channel affine of xc, written as one more inference BatchNormalization
 *             (mean 0, variance 1, epsilon 0).
 * Three full-size passes forward (Sub, Mul, BatchNormalization) and four backward (Mul for sum(dy * xc),
 * the affine, Sub, Mul) against ten written out op by op.
 */
import type { GraphBuilder } from '../graph-builder.js';

export interface TrainBatchNorm {
  /** Batch mean and biased batch variance, each [C]. */
  mean: string;
  variance: string;
  backward(dy: string, needX: boolean): { dx?: string; dgamma: string; dbeta: string };
}

/** y = x * scale + bias per channel (axis 1), in one pass: inference BatchNormalization with mean 0, variance 1. */
function channelAffine(b: GraphBuilder, x: string, scale: string, bias: string, channels: number): string {
  return b.one('BatchNormalization', [x, scale, bias, b.floats(new Array<number>(channels).fill(0)), b.floats(new Array<number>(channels).fill(1))], { epsilon: { float: 0 } });
}

export function emitTrainBatchNorm(b: GraphBuilder, x: string, gamma: string, beta: string, eps: number, rank: number, channels: number, y: string): TrainBatchNorm {
  if (rank !== 4 && rank !== 2) throw new Error(`BatchNormalization on rank ${rank}`);
  const axes = rank === 4 ? [0, 2, 3] : [0];
  const bshape = rank === 4 ? [1, channels, 1, 1] : [1, channels];
  const flat = (t: string) => b.one('Reshape', [t, b.ints([channels])]);
  const shaped = (t: string) => b.one('Reshape', [t, b.ints(bshape)]);
  const mean = b.reduceMean(x, axes, true);
  const xc = b.one('Sub', [x, mean]);
  // ReduceMean of the squares, not ReduceSumSquare / M: onnxruntime's ReduceSumSquare sums less exactly, which
  // moved three NAD steps 2x further from PyTorch (tests/training-semantics.test.ts).
  const variance = b.reduceMean(b.one('Mul', [xc, xc]), axes, true);
  b.node('BatchNormalization', [x, gamma, beta, flat(mean), flat(variance)], { epsilon: { float: eps } }, [y]);
  return {
    mean: flat(mean),
    variance: flat(variance),
    backward(dy, needX) {
      const m = b.countOf(x, channels); // N*H*W, dynamic in the batch
      const inv = b.one('Reciprocal', [b.one('Sqrt', [b.one('Add', [variance, b.scalar(eps)])])]); // [1, C, 1, 1]
      const sumDy = b.reduceSum(dy, axes, true);
      const sumDyXc = b.reduceSum(b.one('Mul', [dy, xc]), axes, true);
      let dx: string | undefined;
      if (needX) {
        // PyTorch's order: (dy - (mean(dy) + xc * k)) * a, k = inv^2 * mean(dy * xc); the bracket is one
        // per-channel affine of xc.
        const k = b.one('Div', [b.one('Mul', [b.one('Mul', [inv, inv]), sumDyXc]), m]);
        const meanDy = b.one('Div', [sumDy, m]);
        const a = b.one('Mul', [shaped(gamma), inv]);
        dx = b.one('Mul', [b.one('Sub', [dy, channelAffine(b, xc, flat(k), flat(meanDy), channels)]), a]);
      }
      return { dx, dgamma: flat(b.one('Mul', [sumDyXc, inv])), dbeta: flat(sumDy) };
    },
  };
}

/**
 * Eval-mode BatchNormalization (running statistics, which are constants here), for methods that fine-tune or
 * attack a model with its BatchNorms frozen (PGD, trigger reverse-engineering, SAU): the forward pass is the
 * inference op itself; backward dx = dy * gamma * inv, dgamma = sum(dy * (x - mean) * inv).
 */
export function emitEvalBatchNorm(b: GraphBuilder, x: string, gamma: string, beta: string, mean: string, variance: string, eps: number, rank: number, channels: number, y: string): Omit<TrainBatchNorm, 'mean' | 'variance'> {
  if (rank !== 4 && rank !== 2) throw new Error(`BatchNormalization on rank ${rank}`);
  const axes = rank === 4 ? [0, 2, 3] : [0];
  const bshape = rank === 4 ? [1, channels, 1, 1] : [1, channels];
  const shaped = (t: string) => b.one('Reshape', [t, b.ints(bshape)]);
  b.node('BatchNormalization', [x, gamma, beta, mean, variance], { epsilon: { float: eps } }, [y]);
  const flat = (t: string) => b.one('Reshape', [t, b.ints([channels])]);
  return {
    backward(dy, needX) {
      const inv = b.one('Reciprocal', [b.one('Sqrt', [b.one('Add', [shaped(variance), b.scalar(eps)])])]);
      const xhat = b.one('Mul', [b.one('Sub', [x, shaped(mean)]), inv]);
      return {
        dx: needX ? b.one('Mul', [dy, b.one('Mul', [shaped(gamma), inv])]) : undefined,
        dgamma: flat(b.reduceSum(b.one('Mul', [dy, xhat]), axes, true)),
        dbeta: flat(b.reduceSum(dy, axes, true)),
      };
    },
  };
}
