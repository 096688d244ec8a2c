/** The defences `clean --method` can run, by name. */
import { BadInputError } from '../errors.js';
import type { Defence } from './defence.js';
import { nad } from './nad.js';
import { TEACHER_METHODS } from './teacher-methods.js';
import { anp } from './anp.js';

export const DEFENCES: readonly Defence[] = [nad as Defence, ...TEACHER_METHODS, anp as Defence];

export function defenceNamed(name: string): Defence {
  const d = DEFENCES.find((x) => x.name === name);
  if (!d) throw new BadInputError(`--method: unknown method '${name}' (choose from ${DEFENCES.map((x) => x.name).join(', ')})`);
  return d;
}
