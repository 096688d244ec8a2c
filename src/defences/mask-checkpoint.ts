/**
 * Checkpoints of the mask-learning loops (ANP's iterations, RNP's recovering epochs): the masks and their
 * momentum stand where a phase keeps its parameters and optimiser state, saved after every entry of the loss
 * history with the random stream; the learned masks are kept as the phase's output once the loop ends, so a
 * chain resumed in a later stage prunes from them without learning them again.
 */
import type { EpochLoss } from '../training/epoch-loop.js';
import { checkpointKey } from '../training/phase.js';
import { BadInputError } from '../errors.js';
import type { DefenceContext } from './defence.js';

export interface MaskProgress {
  /** The phase's name in the checkpoint. */
  key: string;
  /** The loss history so far (the checkpoint keeps this array: entries pushed to it are saved). */
  history: EpochLoss[];
  /** Entries of the loop done: 0 for a fresh start. */
  done: number;
  /** The loop had finished: the masks are its result and nothing is left to run. */
  finished: boolean;
  /** The random stream's state to continue from, when resumed part way. */
  rngState?: number;
}

/** Where a mask loop of `phase` starts: fresh, part way (masks, momentum filled in), or finished (masks filled in). */
export function restoreMasks(ctx: DefenceContext, phase: string, masks: Map<string, Float32Array>, momentum: Map<string, Float32Array>): MaskProgress {
  const ck = ctx.checkpoint, key = checkpointKey(ctx, phase);
  const finished = ck.finished.get(key), resume = finished ? undefined : ck.resumeOf(key);
  const history = (ck.histories[key] = finished || resume ? (ck.histories[key] ?? []) : []);
  const fill = (into: Map<string, Float32Array>, from: ReadonlyMap<string, Float32Array>, what: string) => {
    for (const [name, v] of into) {
      const saved = from.get(name);
      if (!saved || saved.length !== v.length) throw new BadInputError(`--checkpoint ${ck.dir}: the saved ${phase} state has no ${what} for '${name}'; delete the folder to start again`);
      v.set(saved);
    }
  };
  if (finished) {
    fill(masks, finished, 'masks');
    ctx.log(`${phase}: masks taken from the checkpoint in ${ck.dir}`);
    return { key, history, done: history.length, finished: true };
  }
  if (resume) {
    fill(masks, resume.params, 'masks');
    fill(momentum, resume.optimizer, 'momentum');
    ctx.log(`${phase}: resumed from the checkpoint in ${ck.dir} after ${resume.epochsDone} of its rounds`);
    return { key, history, done: resume.epochsDone, finished: false, rngState: resume.rngState };
  }
  return { key, history, done: 0, finished: false };
}

/** After an entry of the loop: `done` entries, the stream's state, the masks and their momentum. */
export function saveMasks(ctx: DefenceContext, key: string, done: number, rngState: number, masks: Map<string, Float32Array>, momentum: Map<string, Float32Array>): void {
  ctx.checkpoint.save(key, done, rngState, masks, momentum);
}

/** The loop ended: its masks are the phase's output in every later save. */
export function finishMasks(ctx: DefenceContext, key: string, masks: ReadonlyMap<string, Float32Array>): void {
  ctx.checkpoint.finish(key, new Map([...masks].map(([k, v]) => [k, v.slice()])));
}
