/**
 * TensorFlow.js for the whole tool. The union package's node bundle registers the chained tensor
 * methods (x.reshape(...)) and every op gradient; tfjs-core alone registers neither under Node.
 */
export * from '@tensorflow/tfjs';

import { customGrad, type GradSaveFunc, type Tensor } from '@tensorflow/tfjs';

/** A custom-gradient body's result: the value, and the inputs' gradients from dy and what the body saved. */
export interface CustomGradientResult {
  value: Tensor;
  gradFunc: (dy: Tensor, saved: Tensor[]) => Tensor | Tensor[];
}

/**
 * tf.customGrad with typed inputs. tfjs declares the body as a rest of tensors followed by `save`, which no
 * fixed-arity function matches, so without this every caller casts the body and the result.
 */
export function customGradient<A extends Tensor[], R extends Tensor = Tensor>(
  body: (...args: [...A, GradSaveFunc]) => CustomGradientResult,
): (...inputs: A) => R {
  return customGrad(body as unknown as Parameters<typeof customGrad>[0]) as unknown as (...inputs: A) => R;
}
