/** Learning-rate schedule of the NAD authors' code: lr for the first epochs, lr x factor afterwards. */
export interface LrSchedule {
  lr: number;
  dropEpoch: number;
  factor: number;
}

export const NAD_SCHEDULE: LrSchedule = { lr: 0.1, dropEpoch: 2, factor: 0.1 };

export function lrAt(s: LrSchedule, epoch: number): number {
  return epoch < s.dropEpoch ? s.lr : s.lr * s.factor;
}
