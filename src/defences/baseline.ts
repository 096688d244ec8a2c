/** The plain fine-tuning baseline every report compares with, for the methods that do not make one on their way (NAD's teacher is one). */
import { modelBytes } from '../export/write-model.js';
import type { DefenceContext, Intermediate, TrainedCopy } from './defence.js';
import { ft } from './ft.js';

/** `ft` with its defaults, in the slot NAD's teacher has (phase 'teacher', seed + 1): the same model NAD's teacher would be. */
export async function trainBaseline(ctx: DefenceContext): Promise<{ model: Intermediate; losses: TrainedCopy['losses']; engines: TrainedCopy['engines'] }> {
  const copy = await ft.train(ctx, ft.resolve({}), { name: 'teacher', seedOffset: 1 });
  copy.store.writeTo(copy.model);
  const weights = copy.model.exportWeights();
  copy.model.dispose();
  const tapNames = ctx.taps.map((t) => t.name);
  return {
    model: { label: 'baseline', method: 'ft', bytes: modelBytes(ctx.source, weights), tapBytes: modelBytes(ctx.source, weights, undefined, tapNames), taps: tapNames },
    losses: copy.losses, engines: copy.engines,
  };
}
