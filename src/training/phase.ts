/**
 * One training phase of a method, written once: engine for the phase's loss, optimiser, its own random
 * stream, resume from a checkpoint, the epoch loop, a checkpoint after every epoch, and the trained values
 * left in the store.
 */
import type { AugmentConfig } from '../data/augment.js';
import type { Dataset } from '../data/dataset.js';
import { Rng } from '../data/random.js';
import type { TrainableModel } from '../import/trainable-model.js';
import type { RunCheckpoint } from './checkpoint.js';
import { createEngine } from './create-engine.js';
import { trainsDropout, type EngineChoice, type GradientSpec, type TrainingEngine } from './engine.js';
import { runEpochs, type BatchStep, type EpochLoss, type EpochProgress } from './epoch-loop.js';
import type { Optimizer } from './optimizers/optimizer.js';
import type { ParameterStore } from './parameter-store.js';
import { divideSchedule, lrAt, type LrSchedule } from './schedule.js';
import { DivergedError } from '../errors.js';

/** What every phase of a run shares. */
export interface PhaseEnvironment {
  data: Dataset;
  mean?: number[];
  std?: number[];
  seed: number;
  engine: EngineChoice;
  preferTfjs?: boolean;
  method: string;
  checkpoint: RunCheckpoint;
  /** Prefix of this run's phase names in the checkpoint: a chain's stages each get their own, so that a later
   * stage's 'teacher' is trained on the model the stage before made, not taken from an earlier 'teacher'. */
  checkpointScope?: string;
  log: (line: string) => void;
  /** A line the report keeps among its warnings (and the CLI prints). */
  warn?: (line: string) => void;
  /**
   * How often a phase that diverges through its learning rate restarts from its start at a tenth of it
   * (default 0: it fails). Only for a learning rate the user left at the method's default.
   */
  lrRetries?: number;
  onProgress?: (p: EpochProgress) => void;
  signal?: AbortSignal;
}

/** How often a phase that diverges at a method's default learning rate restarts at a tenth of it. */
export const DEFAULT_LR_RETRIES = 2;

export interface PhaseSpec {
  /** Name in the report's losses and the checkpoint ('teacher', 'nad', 'ft', ...). */
  name: string;
  title: string;
  model: TrainableModel;
  store: ParameterStore;
  optimizer: Optimizer;
  gradients: GradientSpec;
  /** Builds the per-batch step from the phase's engine. */
  step: (engine: TrainingEngine) => BatchStep;
  epochs: number;
  batch: number;
  schedule: LrSchedule;
  augment: AugmentConfig;
  /** The phase's random stream is Rng(seed + seedOffset). */
  seedOffset: number;
  extras?: (nchw: Float32Array, dims: number[]) => Promise<Record<string, Float32Array>>;
  /** Ends the phase after an epoch before `epochs` (see EpochLoopConfig.stopAfter). */
  stopAfter?: (epoch: EpochLoss) => boolean;
  /**
   * A check of the trained weights beyond finiteness, after the last epoch: a returned reason counts as
   * divergence through the learning rate, so the phase restarts at a tenth of a default rate like any other.
   */
  verify?: () => Promise<string | undefined>;
}

export interface PhaseResult {
  losses: EpochLoss[];
  engine: string;
}

/** A phase's name in the checkpoint. */
export function checkpointKey(env: Pick<PhaseEnvironment, 'checkpointScope'>, phase: string): string {
  return `${env.checkpointScope ?? ''}${phase}`;
}

/**
 * The divisor of the learning rate a resumed phase ran at: its saved epochs record their rates, and a restart
 * after divergence divided them by a power of ten.
 */
function resumedDivisor(schedule: LrSchedule, history: readonly EpochLoss[]): number {
  const first = history[0];
  return first ? 10 ** Math.max(0, Math.round(Math.log10(lrAt(schedule, first.epoch) / first.lr))) : 1;
}

export async function runPhase(env: PhaseEnvironment, p: PhaseSpec): Promise<PhaseResult> {
  const ck = env.checkpoint;
  const key = checkpointKey(env, p.name);
  // The phase's start, to restart from after a divergence (a restart is the run `--lr <a tenth>` would make);
  // a copy of the weights, so only when a restart may come.
  const initial = (env.lrRetries ?? 0) > 0 ? { params: p.store.snapshot(), optimizer: new Map([...p.optimizer.state()].map(([k, v]) => [k, v.slice()])) } : undefined;
  let resume = ck.resumeOf(key);
  const history = (ck.histories[key] = resume ? (ck.histories[key] ?? []) : []);
  let divisor = resumedDivisor(p.schedule, history);
  for (let retriesLeft = env.lrRetries ?? 0; ; retriesLeft--) {
    const schedule = divideSchedule(p.schedule, divisor);
    const rng = new Rng(env.seed + p.seedOffset);
    let start = 0;
    if (resume) {
      p.store.load(resume.params);
      p.optimizer.setState(resume.optimizer);
      rng.state = resume.rngState;
      start = resume.epochsDone;
      env.log(`${p.name}: resuming after epoch ${start} from ${ck.dir}`);
    }
    try {
      const engine = await trainEpochs(env, p, { schedule, rng, start, history, key });
      return { losses: history, engine };
    } catch (e) {
      if (!(e instanceof DivergedError) || !e.lrsFault || retriesLeft <= 0 || !initial) throw e;
      divisor *= 10;
      const line = `warning: ${e.message.replace(/;.*$/, '')} at lr ${e.lr}; restarted it from its start with its learning rates divided by ${divisor} (lr ${lrAt(divideSchedule(p.schedule, divisor), 0)}; --lr sets it)`;
      env.log(line);
      env.warn?.(line);
      p.store.load(initial.params);
      p.optimizer.setState(initial.optimizer);
      history.length = 0;
      resume = undefined;
    }
  }
}

/** One attempt at a phase: the epoch loop on a fresh engine, then the check that the last update left finite weights. */
async function trainEpochs(
  env: PhaseEnvironment, p: PhaseSpec, a: { schedule: LrSchedule; rng: Rng; start: number; history: EpochLoss[]; key: string },
): Promise<string> {
  const ck = env.checkpoint;
  const engine = await createEngine(p.model, p.store, p.gradients, { choice: env.engine, method: env.method, onLog: env.log, preferTfjs: env.preferTfjs });
  try {
    await runEpochs(env.data, {
      phase: p.name, title: p.title, epochs: p.epochs, batch: p.batch, schedule: a.schedule, augment: p.augment, mean: env.mean, std: env.std,
      step: p.step(engine), extras: p.extras, dropout: trainsDropout(p.gradients) ? p.model.dropoutSites : undefined, onProgress: env.onProgress, signal: env.signal, startEpoch: a.start, history: a.history,
      onEpochEnd: (done) => ck.save(a.key, done, a.rng.state, p.store.values(), p.optimizer.state()), stopAfter: p.stopAfter,
    }, a.rng);
  } finally {
    await engine.dispose();
  }
  // Each loss is seen before its update, so the last update of a phase can still blow the weights up.
  for (const name of p.store.trainableNames()) {
    if (!p.store.get(name).value.every(Number.isFinite)) {
      const lr = lrAt(a.schedule, p.epochs - 1);
      throw new DivergedError(`${p.title} diverged at epoch ${p.epochs} (its weights are no longer finite after the last update); try a smaller learning rate, e.g. --lr ${lr / 10}`, lr, true);
    }
  }
  const reason = await p.verify?.();
  if (reason) {
    // The weights the whole phase made: its starting rate is the one to lower (what --lr sets).
    const lr = lrAt(a.schedule, 0);
    throw new DivergedError(`${p.title} diverged at epoch ${p.epochs} (${reason}); try a smaller learning rate, e.g. --lr ${lr / 10}`, lr, true);
  }
  return engine.name;
}
