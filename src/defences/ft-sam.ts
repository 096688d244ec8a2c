/**
 * `ft-sam` (Zhu et al., ICCV 2023), as BackdoorBench's defense/ft-sam.py runs it: fine-tuning with adaptive
 * sharpness-aware minimisation. Each step takes the gradient at w + e, e = rho * w^2 g / ||w g|| (one norm
 * over all parameters), and applies it at w; BatchNorm uses batch statistics in both passes but only the first
 * updates the running statistics. Defaults: rho 2, SGD lr 0.01 momentum 0.9 (no Nesterov) weight decay 5e-4,
 * label smoothing 0.1 (BackdoorBench's form), batch 256, random crop + flip. BackdoorBench runs 100 epochs
 * with a cosine schedule that it steps every batch (T_max 100 steps, so the rate cycles); here the cosine
 * runs once over the epochs, 20 by default.
 */
import type { AugmentConfig } from '../data/augment.js';
import { crossEntropyTerm } from '../training/loss/cross-entropy.js';
import { Sgd, type SgdConfig } from '../training/optimizers/sgd.js';
import { describeSchedule, type LrSchedule } from '../training/schedule.js';
import { samStep } from '../training/steps.js';
import type { Defence } from './defence.js';
import { checkCommon, fraction, positive } from './checks.js';
import type { MethodOptions } from './method-options.js';
import { trainCopy } from './train-copy.js';

export const CROP_FLIP: AugmentConfig = { pad: 4, flip: true, cutout: 0 };

export interface FtSamOptions {
  epochs: number;
  batch: number;
  schedule: LrSchedule;
  sgd: SgdConfig;
  rho: number;
  labelSmoothing: number;
}

export const ftSam: Defence<FtSamOptions> = {
  name: 'ft-sam',
  summary: 'fine-tuning with adaptive sharpness-aware minimisation (Zhu et al. 2023)',
  options: ['rho', 'labelSmoothing', 'baseline'],
  resolve(o: MethodOptions): FtSamOptions {
    checkCommon(o);
    positive(o.rho, '--rho');
    fraction(o.labelSmoothing, '--label-smoothing');
    const epochs = o.epochs ?? 20;
    return {
      epochs, batch: o.batch ?? 256, schedule: { kind: 'cosine', lr: o.lr ?? 0.01, epochs },
      sgd: { momentum: o.momentum ?? 0.9, nesterov: false, weightDecay: o.weightDecay ?? 5e-4 },
      rho: o.rho ?? 2, labelSmoothing: o.labelSmoothing ?? 0.1,
    };
  },
  describe: (r) => ({
    epochs: r.epochs, lr: r.schedule.lr, schedule: describeSchedule(r.schedule), batch: r.batch, optimizer: 'sgd', momentum: r.sgd.momentum,
    nesterov: r.sgd.nesterov, weight_decay: r.sgd.weightDecay, rho: r.rho, adaptive: true, label_smoothing: r.labelSmoothing,
    augmentation: 'RandomCrop(pad 4) + HorizontalFlip',
  }),
  // Momentum, the perturbed copy of every value and a second gradient.
  provenance: 'fine-tuning-sam',
  stateFactor: (r) => (r.sgd.momentum !== 0 ? 1 : 0) + 2,
  train(ctx, r, slot) {
    return trainCopy(ctx, slot, (model, store) => {
      const opt = new Sgd(r.sgd);
      return {
        title: 'FT-SAM', optimizer: opt, gradients: { terms: [crossEntropyTerm(model.numClasses, r.labelSmoothing, 'others')] },
        step: (engine) => samStep(engine, store, opt, { rho: r.rho, adaptive: true }), epochs: r.epochs, batch: r.batch, schedule: r.schedule, augment: CROP_FLIP,
      };
    });
  },
};
