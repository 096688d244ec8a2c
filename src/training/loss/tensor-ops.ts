/**
 * The small set of tensor operations loss terms are written in. Each loss term (and the attention map) is
 * written once against this interface; the onnxruntime engine implements it by emitting ONNX nodes that its
 * gradient registry differentiates, the tfjs engine with TensorFlow.js ops that tf.grad differentiates. So no
 * loss gradient is derived by hand, and both engines compute the same function.
 */
export interface TensorOps<T> {
  scalar(v: number): T;
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  div(a: T, b: T): T;
  neg(a: T): T;
  sqrt(a: T): T;
  exp(a: T): T;
  /** Natural logarithm. */
  log(a: T): T;
  /** Clamped to [min, max] (either bound may be omitted); no gradient where the value is clamped. */
  clip(a: T, min?: number, max?: number): T;
  /** |a| with PyTorch's gradient at 0 (zero). */
  abs(a: T): T;
  /** a^p for a constant p. */
  pow(a: T, p: number): T;
  /** Sum over non-batch axes. */
  sum(a: T, axes: number[], keepDims: boolean): T;
  /** Mean over non-batch axes. */
  mean(a: T, axes: number[], keepDims: boolean): T;
  /** Mean over the batch axis (axis 0), whose size is known only at run time. */
  batchMean(a: T): T;
  /** Reshape; -1 stands for the batch axis. */
  reshape(a: T, shape: number[]): T;
  logSoftmax(a: T, axis: number): T;
}
