/**
 * Train-mode BatchNormalization written out as primitive ops, so the batch statistics are graph outputs
 * (for the running-statistics update) and the backward pass can reuse x_hat and 1/sigma:
 *   y = gamma * x_hat + beta,  x_hat = (x - mean) * inv,  inv = 1 / sqrt(var_biased + eps)
 *   dx = gamma * inv * (dy - mean(dy) - x_hat * mean(dy * x_hat))
 */
import type { GraphBuilder } from '../graph-builder.js';

export interface TrainBatchNorm {
  /** Batch mean and biased batch variance, each [C]. */
  mean: string;
  variance: string;
  backward(dy: string, needX: boolean): { dx?: string; dgamma: string; dbeta: string };
}

export function emitTrainBatchNorm(b: GraphBuilder, x: string, gamma: string, beta: string, eps: number, rank: number, channels: number, y: string): TrainBatchNorm {
  if (rank !== 4 && rank !== 2) throw new Error(`BatchNormalization on rank ${rank}`);
  const axes = rank === 4 ? [0, 2, 3] : [0];
  const bshape = rank === 4 ? [1, channels, 1, 1] : [1, channels];
  const mean = b.reduceMean(x, axes, true);
  const xc = b.one('Sub', [x, mean]);
  const variance = b.reduceMean(b.one('Mul', [xc, xc]), axes, true);
  const inv = b.one('Reciprocal', [b.one('Sqrt', [b.one('Add', [variance, b.scalar(eps)])])]);
  const xhat = b.one('Mul', [xc, inv]);
  const g = b.one('Reshape', [gamma, b.ints(bshape)]);
  const beta4 = b.one('Reshape', [beta, b.ints(bshape)]);
  b.node('Add', [b.one('Mul', [xhat, g]), beta4], {}, [y]);
  const flat = (t: string) => b.one('Reshape', [t, b.ints([channels])]);
  return {
    mean: flat(mean),
    variance: flat(variance),
    backward(dy, needX) {
      const m = b.countOf(x, channels); // N*H*W, dynamic in the batch
      const sumDy = b.reduceSum(dy, axes, true);
      const sumDyXhat = b.reduceSum(b.one('Mul', [dy, xhat]), axes, true);
      let dx: string | undefined;
      if (needX) {
        const meanDy = b.one('Div', [sumDy, m]);
        const meanDyXhat = b.one('Div', [sumDyXhat, m]);
        const t = b.one('Sub', [b.one('Sub', [dy, meanDy]), b.one('Mul', [xhat, meanDyXhat])]);
        dx = b.one('Mul', [t, b.one('Mul', [g, inv])]);
      }
      return { dx, dgamma: flat(sumDyXhat), dbeta: flat(sumDy) };
    },
  };
}

/**
 * Eval-mode BatchNormalization (running statistics, which are constants here) as primitive ops, for methods
 * that fine-tune or attack a model with its BatchNorms frozen (PGD, trigger reverse-engineering, SAU):
 *   y = gamma * (x - mean) * inv + beta,  inv = 1 / sqrt(var + eps);  dx = dy * gamma * inv
 */
export function emitEvalBatchNorm(b: GraphBuilder, x: string, gamma: string, beta: string, mean: string, variance: string, eps: number, rank: number, channels: number, y: string): Omit<TrainBatchNorm, 'mean' | 'variance'> {
  if (rank !== 4 && rank !== 2) throw new Error(`BatchNormalization on rank ${rank}`);
  const axes = rank === 4 ? [0, 2, 3] : [0];
  const bshape = rank === 4 ? [1, channels, 1, 1] : [1, channels];
  const shaped = (t: string) => b.one('Reshape', [t, b.ints(bshape)]);
  const inv = b.one('Reciprocal', [b.one('Sqrt', [b.one('Add', [shaped(variance), b.scalar(eps)])])]);
  const xhat = b.one('Mul', [b.one('Sub', [x, shaped(mean)]), inv]);
  const g = shaped(gamma);
  b.node('Add', [b.one('Mul', [xhat, g]), shaped(beta)], {}, [y]);
  const flat = (t: string) => b.one('Reshape', [t, b.ints([channels])]);
  return {
    backward(dy, needX) {
      return {
        dx: needX ? b.one('Mul', [dy, b.one('Mul', [g, inv])]) : undefined,
        dgamma: flat(b.reduceSum(b.one('Mul', [dy, xhat]), axes, true)),
        dbeta: flat(b.reduceSum(dy, axes, true)),
      };
    },
  };
}
