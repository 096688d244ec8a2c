/** Learning-rate schedules, per epoch: constant, NAD's step drop, and cosine annealing (torch's CosineAnnealingLR, eta_min 0). */
export type LrSchedule =
  | { kind: 'constant'; lr: number }
  | { kind: 'step'; lr: number; dropEpoch: number; factor: number }
  | { kind: 'cosine'; lr: number; epochs: number };

export const NAD_SCHEDULE: LrSchedule = { kind: 'step', lr: 0.1, dropEpoch: 2, factor: 0.1 };

export function lrAt(s: LrSchedule, epoch: number): number {
  if (s.kind === 'constant') return s.lr;
  if (s.kind === 'cosine') return (s.lr * (1 + Math.cos((Math.PI * epoch) / s.epochs))) / 2;
  return epoch < s.dropEpoch ? s.lr : s.lr * s.factor;
}

export function describeSchedule(s: LrSchedule): string {
  if (s.kind === 'constant') return `${s.lr}, constant`;
  return s.kind === 'cosine' ? `cosine from ${s.lr} over ${s.epochs} epochs` : `${s.lr}, x${s.factor} from epoch ${s.dropEpoch}`;
}

/** The same schedule with every learning rate divided by `divisor` (divided, so 0.1 / 10 is exactly 0.01, as --lr 0.01 gives). */
export function divideSchedule(s: LrSchedule, divisor: number): LrSchedule {
  return divisor === 1 ? s : { ...s, lr: s.lr / divisor };
}
