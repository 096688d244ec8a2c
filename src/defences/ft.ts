/**
 * `ft`: plain fine-tuning on the clean data, the NAD authors' teacher recipe (their code's defaults): SGD
 * lr 0.1 with Nesterov momentum 0.9, x0.1 from epoch 2, weight decay 1e-4, batch 64, 10 epochs, random crop,
 * flip and cutout. It is also every report's baseline.
 */
import { NAD_AUGMENT } from '../data/augment.js';
import { crossEntropyTerm } from '../training/loss/cross-entropy.js';
import { Sgd, type SgdConfig } from '../training/optimizers/sgd.js';
import { describeSchedule, type LrSchedule } from '../training/schedule.js';
import { plainStep } from '../training/steps.js';
import type { Defence } from './defence.js';
import { checkCommon, nonNegative } from './checks.js';
import type { MethodOptions } from './method-options.js';
import { trainCopy } from './train-copy.js';

export interface FtOptions {
  epochs: number;
  batch: number;
  schedule: LrSchedule & { kind: 'step' };
  sgd: SgdConfig;
}

export const ft: Defence<FtOptions> = {
  name: 'ft',
  summary: 'plain fine-tuning (NAD authors\' teacher recipe)',
  options: ['lrDropEpoch', 'baseline'],
  resolve(o: MethodOptions): FtOptions {
    checkCommon(o);
    nonNegative(o.lrDropEpoch, '--lr-drop-epoch', true);
    return {
      epochs: o.epochs ?? 10, batch: o.batch ?? 64,
      schedule: { kind: 'step', lr: o.lr ?? 0.1, dropEpoch: o.lrDropEpoch ?? 2, factor: 0.1 },
      sgd: { momentum: o.momentum ?? 0.9, nesterov: true, weightDecay: o.weightDecay ?? 1e-4 },
    };
  },
  describe: (r) => ({
    epochs: r.epochs, lr: r.schedule.lr, lr_drop_epoch: r.schedule.dropEpoch, lr_factor: r.schedule.factor, schedule: describeSchedule(r.schedule),
    batch: r.batch, optimizer: 'sgd', momentum: r.sgd.momentum, nesterov: r.sgd.nesterov, weight_decay: r.sgd.weightDecay,
    augmentation: 'RandomCrop(pad 4) + HorizontalFlip + Cutout(1, 3)',
  }),
  provenance: 'fine-tuning',
  stateFactor: (r) => (r.sgd.momentum !== 0 ? 1 : 0),
  train(ctx, r, slot) {
    return trainCopy(ctx, slot, (model, store) => {
      const opt = new Sgd(r.sgd);
      return {
        title: 'fine-tuning', optimizer: opt, gradients: { terms: [crossEntropyTerm(model.numClasses)] },
        step: (engine) => plainStep(engine, store, opt), epochs: r.epochs, batch: r.batch, schedule: r.schedule, augment: NAD_AUGMENT,
      };
    });
  },
};
