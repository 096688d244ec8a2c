/** The defences `clean --method` can run, by name. */
import { BadInputError } from '../errors.js';
import type { Defence } from './defence.js';
import { nad } from './nad.js';
import { TEACHER_METHODS } from './teacher-methods.js';
import { anp } from './anp.js';
import { rnp } from './rnp.js';
import { chainDefence, CHAIN_SEPARATOR } from './chain.js';

export const DEFENCES: readonly Defence[] = [nad as Defence, ...TEACHER_METHODS, anp as Defence, rnp as Defence];

/** A defence by name, or a chain of them joined by '+' (anp+ft-sam). */
export function defenceNamed(name: string): Defence {
  const choices = () => `choose from ${DEFENCES.map((x) => x.name).join(', ')}, or a chain such as anp${CHAIN_SEPARATOR}ft-sam`;
  if (name.includes(CHAIN_SEPARATOR)) {
    const parts = name.split(CHAIN_SEPARATOR);
    const stages = parts.map((part) => {
      const d = DEFENCES.find((x) => x.name === part);
      if (!d) throw new BadInputError(`--method: unknown method '${part}' in the chain '${name}' (${choices()})`);
      return d;
    });
    return chainDefence(name, stages) as Defence;
  }
  const d = DEFENCES.find((x) => x.name === name);
  if (!d) throw new BadInputError(`--method: unknown method '${name}' (${choices()})`);
  return d;
}
