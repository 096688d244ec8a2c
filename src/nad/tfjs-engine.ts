/** The TensorFlow.js engine: tf.variableGrads over the interpreted graph (train-step.ts). */
import * as tf from '../tf.js';
import type { TrainableModel } from '../import/trainable-model.js';
import type { Batch, TrainingEngine } from './engine.js';
import type { Sgd } from './sgd.js';
import { trainStep, type StepLosses } from './train-step.js';

export class TfjsEngine implements TrainingEngine {
  readonly name = 'tfjs' as const;

  constructor(private readonly model: TrainableModel, private readonly sgd: Sgd, private readonly distill?: { betas: number[]; p: number }) {}

  async step(batch: Batch, lr: number, maps?: Float32Array[]): Promise<StepLosses> {
    const m = this.model;
    const [c, h, w] = m.inputShape;
    const x = tf.tensor4d(batch.nhwc, [batch.n, h, w, c]);
    const y = tf.tensor1d(batch.labels, 'int32');
    const mapTensors = maps?.map((a) => tf.tensor2d(a, [batch.n, a.length / batch.n]));
    try {
      return trainStep(m, this.sgd, x, y, lr, mapTensors && this.distill ? { maps: mapTensors, ...this.distill } : undefined);
    } finally {
      x.dispose();
      y.dispose();
      mapTensors?.forEach((t) => t.dispose());
    }
  }

  sync(): void {}

  async dispose(): Promise<void> {}
}
