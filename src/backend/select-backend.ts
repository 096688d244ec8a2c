/**
 * Chooses the TensorFlow.js backend. tfjs-node(-gpu) are optional dependencies whose install fetches
 * libtensorflow from outside the npm registry, so they are detected at run time; wasm is the embedded
 * default that installs everywhere; cpu (pure JS) is a last resort.
 */
import * as tf from '../tf.js';
import { BadInputError } from '../errors.js';
import { resetConvGradientCache } from './conv2d-gradients.js';

export const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

export interface BackendInfo {
  name: Exclude<BackendChoice, 'auto'>;
  /** Why this backend runs (which ones were tried and failed). */
  reason: string;
}

async function tryLoad(name: Exclude<BackendChoice, 'auto'>): Promise<string | undefined> {
  try {
    switch (name) {
      case 'tensorflow-gpu':
        await import(/* optional */ '@tensorflow/tfjs-node-gpu' as string);
        if (!(await tf.setBackend('tensorflow'))) return 'did not initialise';
        return undefined;
      case 'tensorflow':
        await import(/* optional */ '@tensorflow/tfjs-node' as string);
        if (!(await tf.setBackend('tensorflow'))) return 'did not initialise';
        return undefined;
      case 'wasm':
        await import('@tensorflow/tfjs-backend-wasm');
        if (!(await tf.setBackend('wasm'))) return 'did not initialise';
        return undefined;
      case 'cpu':
        await import('@tensorflow/tfjs-backend-cpu');
        if (!(await tf.setBackend('cpu'))) return 'did not initialise';
        return undefined;
    }
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    return /Cannot find (module|package)/.test(msg) ? 'not installed' : msg.split('\n')[0];
  }
}

let current: BackendInfo | undefined;

/** Activates a backend ('auto' = the first that loads of tensorflow-gpu, tensorflow, wasm, cpu). */
export async function useBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (!BACKENDS.includes(choice)) {
    throw new BadInputError(`--backend: unknown backend '${choice}' (choose from ${BACKENDS.join(', ')})`);
  }
  if (current && (choice === 'auto' || choice === current.name)) return current;
  const order = choice === 'auto' ? (['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const) : [choice];
  const failed: string[] = [];
  for (const name of order) {
    const err = await tryLoad(name);
    if (err === undefined) {
      await tf.ready();
      resetConvGradientCache();
      const reason = failed.length ? `${failed.join('; ')}` : choice === 'auto' ? 'first available' : 'requested';
      current = { name, reason };
      return current;
    }
    failed.push(`${name}: ${err}`);
  }
  throw new BadInputError(`--backend ${choice}: no backend could be loaded (${failed.join('; ')})`);
}
