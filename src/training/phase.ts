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
import { lrAt, type LrSchedule } from './schedule.js';
import { ExitCode, NadError } from '../errors.js';

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
  onProgress?: (p: EpochProgress) => void;
  signal?: AbortSignal;
}

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
}

export interface PhaseResult {
  losses: EpochLoss[];
  engine: string;
}

/** A phase's name in the checkpoint. */
export function checkpointKey(env: Pick<PhaseEnvironment, 'checkpointScope'>, phase: string): string {
  return `${env.checkpointScope ?? ''}${phase}`;
}

export async function runPhase(env: PhaseEnvironment, p: PhaseSpec): Promise<PhaseResult> {
  const rng = new Rng(env.seed + p.seedOffset);
  const ck = env.checkpoint;
  const key = checkpointKey(env, p.name);
  const resume = ck.resumeOf(key);
  let start = 0;
  if (resume) {
    p.store.load(resume.params);
    p.optimizer.setState(resume.optimizer);
    rng.state = resume.rngState;
    start = resume.epochsDone;
    env.log(`${p.name}: resuming after epoch ${start} from ${ck.dir}`);
  }
  const history = (ck.histories[key] = resume ? (ck.histories[key] ?? []) : []);
  const engine = await createEngine(p.model, p.store, p.gradients, { choice: env.engine, method: env.method, onLog: env.log, preferTfjs: env.preferTfjs });
  try {
    await runEpochs(env.data, {
      phase: p.name, title: p.title, epochs: p.epochs, batch: p.batch, schedule: p.schedule, augment: p.augment, mean: env.mean, std: env.std,
      step: p.step(engine), extras: p.extras, dropout: trainsDropout(p.gradients) ? p.model.dropoutSites : undefined, onProgress: env.onProgress, signal: env.signal, startEpoch: start, history,
      onEpochEnd: (done) => ck.save(key, done, rng.state, p.store.values(), p.optimizer.state()),
    }, rng);
  } finally {
    await engine.dispose();
  }
  // Each loss is seen before its update, so the last update of a phase can still blow the weights up.
  for (const name of p.store.trainableNames()) {
    if (!p.store.get(name).value.every(Number.isFinite)) {
      const lr = lrAt(p.schedule, p.epochs - 1);
      throw new NadError(`${p.title} diverged at epoch ${p.epochs} (its weights are no longer finite after the last update); try a smaller learning rate, e.g. --lr ${lr / 10}`, ExitCode.internal);
    }
  }
  return { losses: history, engine: engine.name };
}
