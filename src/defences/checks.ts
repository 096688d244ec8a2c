/** Value checks shared by the defences' resolve(). */
import { BadInputError } from '../errors.js';

export function positive(v: number | undefined, flag: string, integer = false): void {
  if (v !== undefined && (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v)))) {
    throw new BadInputError(`${flag}: must be a positive ${integer ? 'integer' : 'number'} (got ${v})`);
  }
}

export function nonNegative(v: number | undefined, flag: string, integer = false): void {
  if (v !== undefined && (!Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v)))) {
    throw new BadInputError(`${flag}: must be a non-negative ${integer ? 'integer' : 'number'} (got ${v})`);
  }
}

export function fraction(v: number | undefined, flag: string): void {
  if (v !== undefined && !(v >= 0 && v < 1)) throw new BadInputError(`${flag}: must be in [0, 1) (got ${v})`);
}

/** The checks of the options every method reads (COMMON_OPTIONS). */
export function checkCommon(o: { epochs?: number; lr?: number; batch?: number; weightDecay?: number; momentum?: number }): void {
  positive(o.epochs, '--epochs', true);
  positive(o.lr, '--lr');
  positive(o.batch, '--batch', true);
  nonNegative(o.weightDecay, '--weight-decay');
  nonNegative(o.momentum, '--momentum');
}
