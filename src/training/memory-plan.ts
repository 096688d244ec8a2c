/**
 * The planned peak memory of a `clean` run, from the inferred tensor shapes, checked before anything trains
 * against --max-memory (default: the memory available now). The coefficients were fitted to measured peak
 * RSS of WRN-16-1 and PreAct-ResNet-18 runs (README, "Memory").
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { BadInputError } from '../errors.js';

/** Node.js, onnxruntime and TensorFlow.js loaded, before any model. */
const RUNTIME_BYTES = 150 * 2 ** 20;
/** Bytes of one training step per byte of forward tensors: forward values kept for the reverse pass, their gradients, and the filter-gradient slices. */
const TRAIN_STEP_FACTOR = 3;
/** Bytes of a frozen model's inference per byte of its forward tensors (onnxruntime reuses buffers). */
const INFERENCE_FACTOR = 1;
/** Copies of the weights besides the optimiser's: the tfjs variables, the parameter store, one gradient set. */
const WEIGHT_COPIES = 3;
/** Images per TensorFlow.js forward pass (the BatchNorm calibration chunks and the export check): its wasm heap never shrinks. */
const TFJS_IMAGES = 64;

export interface MemoryPart {
  what: string;
  bytes: number;
}

export interface MemoryPlanInput {
  /** Float values of every tensor of one image's forward pass. */
  floatsPerImage: number;
  parameterBytes: number;
  /** The method's state per parameter value, in copies (momentum 1, Adam 2, SAM's perturbed copy 1 more). */
  stateFactor: number;
  batch: number;
  /** Images held as float32 (clean, test, poisoned). */
  dataBytes: number;
  /** Models run frozen beside training at the same batch (NAD's teacher; SAU's reference, and its PGD forward pass). */
  frozenModels: number;
  /** Input-gradient graphs beside training at the same batch (SAU's PGD): each keeps a training step's activations. */
  inputGradientGraphs?: number;
  /** A phase keeps its start (weights and method state) to restart from when a default learning rate diverges. */
  restartSnapshot?: boolean;
}

export function planMemory(i: MemoryPlanInput): { total: number; parts: MemoryPart[] } {
  const forward = (images: number) => images * i.floatsPerImage * 4;
  const parts: MemoryPart[] = [
    { what: 'the runtime (Node.js, onnxruntime, TensorFlow.js)', bytes: RUNTIME_BYTES },
    { what: 'the images as float32', bytes: i.dataBytes },
    { what: 'weights, gradients and the method\'s state', bytes: i.parameterBytes * (WEIGHT_COPIES + i.stateFactor) },
    { what: `the activations of one training step at batch ${i.batch}`, bytes: forward(i.batch) * TRAIN_STEP_FACTOR },
    { what: 'the TensorFlow.js forward passes (calibration, export check)', bytes: forward(TFJS_IMAGES) },
  ];
  if (i.frozenModels > 0) {
    parts.push({ what: `${i.frozenModels === 1 ? 'the frozen teacher' : `${i.frozenModels} frozen forward passes`} at batch ${i.batch}`, bytes: i.frozenModels * (forward(i.batch) * INFERENCE_FACTOR + i.parameterBytes) });
  }
  if (i.restartSnapshot) {
    parts.push({ what: 'the copy of the weights and state a diverging phase restarts from', bytes: i.parameterBytes * (1 + i.stateFactor) });
  }
  if (i.inputGradientGraphs) {
    parts.push({ what: `${i.inputGradientGraphs} input-gradient passes (PGD) at batch ${i.batch}`, bytes: i.inputGradientGraphs * forward(i.batch) * TRAIN_STEP_FACTOR });
  }
  return { total: parts.reduce((a, p) => a + p.bytes, 0), parts };
}

/** Memory available to a new allocation now: /proc/meminfo's MemAvailable, else the OS's free memory. */
export function availableMemory(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return freemem();
}

export function gb(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GB`;
}

/** The budget in bytes: --max-memory, or what is available now plus what this process already holds. */
export function memoryBudget(maxMemoryGb: number | undefined): number {
  return maxMemoryGb !== undefined ? maxMemoryGb * 2 ** 30 : availableMemory() + process.memoryUsage().rss;
}

/** Refuses a plan over the budget, naming the plan, the budget and its largest part. */
export function checkBudget(plan: { total: number; parts: MemoryPart[] }, budget: number, maxMemoryGb: number | undefined): void {
  if (plan.total <= budget) return;
  const largest = plan.parts.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const limit = maxMemoryGb !== undefined ? `--max-memory ${maxMemoryGb} GB` : `the ${gb(budget)} available`;
  throw new BadInputError(`the planned peak memory, ${gb(plan.total)}, exceeds ${limit} (largest part: ${largest.what}, ${gb(largest.bytes)}); try a smaller --batch`);
}
