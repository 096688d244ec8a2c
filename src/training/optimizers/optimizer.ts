/** An optimiser updates a ParameterStore's trainable values from gradients and owns its state (checkpointed). */
import type { ParameterStore } from '../parameter-store.js';

export interface Optimizer {
  readonly kind: 'sgd' | 'adam';
  /** One update; parameters without a gradient keep their value (and state). */
  step(store: ParameterStore, grads: ReadonlyMap<string, Float32Array>, lr: number): void;
  /** State buffers by key (`<parameter>#<slot>`), for checkpoints and memory estimates. */
  state(): Map<string, Float32Array>;
  setState(state: ReadonlyMap<string, Float32Array>): void;
}

/** Bytes of optimiser state per parameter value (SGD with momentum 1 buffer, Adam 2). */
export function optimizerStateFactor(kind: Optimizer['kind'], momentum = 0.9): number {
  return kind === 'adam' ? 2 : momentum !== 0 ? 1 : 0;
}
