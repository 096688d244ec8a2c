/** Trains a fresh copy of the model in one phase, or takes it from the checkpoint when that phase already finished. */
import { TrainableModel } from '../import/trainable-model.js';
import { ParameterStore } from '../training/parameter-store.js';
import { checkpointKey, runPhase, type PhaseSpec } from '../training/phase.js';
import type { DefenceContext, PhaseSlot, TrainedCopy } from './defence.js';

export type PhasePlan = Omit<PhaseSpec, 'name' | 'model' | 'store' | 'seedOffset'>;

export async function trainCopy(ctx: DefenceContext, slot: PhaseSlot, plan: (model: TrainableModel, store: ParameterStore) => PhasePlan | Promise<PhasePlan>): Promise<TrainedCopy> {
  const model = new TrainableModel(ctx.source, ctx.tapNames);
  const restored = ctx.restore(model);
  const store = new ParameterStore(model);
  const key = checkpointKey(ctx, slot.name);
  const done = ctx.checkpoint.finished.get(key);
  if (done) {
    store.load(done);
    ctx.log(`${slot.name}: taken from the checkpoint in ${ctx.checkpoint.dir}`);
    return { model, store, losses: { [slot.name]: ctx.checkpoint.histories[key] ?? [] }, engines: { [slot.name]: 'checkpoint' }, restored };
  }
  const p = await plan(model, store);
  ctx.log(`${slot.name}: ${p.title}, ${p.epochs} epochs on ${ctx.data.n} images`);
  const verify = slot.verify;
  const r = await runPhase(ctx, { ...p, name: slot.name, seedOffset: slot.seedOffset, model, store, verify: verify && (() => verify(model, store)) });
  ctx.checkpoint.finish(key, store.snapshot());
  return { model, store, losses: { [slot.name]: r.losses }, engines: { [slot.name]: r.engine }, restored };
}
