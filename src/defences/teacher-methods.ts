/** The methods that can train NAD's teacher (--teacher-method): every defence but NAD itself. */
import { BadInputError } from '../errors.js';
import type { Defence } from './defence.js';
import { ft } from './ft.js';
import { ftSam } from './ft-sam.js';
import { fst } from './fst.js';
import { sau } from './sau.js';

export const TEACHER_METHODS: readonly Defence[] = [ft, ftSam, fst, sau] as Defence[];

export function teacherDefence(name: string): Defence {
  const d = TEACHER_METHODS.find((x) => x.name === name);
  if (!d) throw new BadInputError(`--teacher-method: unknown method '${name}' (choose from ${TEACHER_METHODS.map((x) => x.name).join(', ')})`);
  return d;
}
