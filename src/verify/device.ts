/**
 * Where onnxruntime runs the sessions (training graphs, frozen teachers, evaluation): the CPU, or a GPU
 * through onnxruntime's CUDA execution provider where its files are installed (onnxruntime-node's install
 * script downloads them on linux/x64 unless told to skip). `auto` takes CUDA when the provider loads.
 * The CUDA path is written but not measured: no machine here has a GPU.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { BadInputError } from '../errors.js';

export const DEVICES = ['auto', 'cpu', 'cuda'] as const;
export type DeviceChoice = (typeof DEVICES)[number];

let providers: string[] = ['cpu'];

/** Execution providers every session uses, in order of preference. */
export function executionProviders(): string[] {
  return providers;
}

/** The CUDA provider library shipped next to onnxruntime-node's binding, if its install put it there. */
function cudaProviderFile(): string | undefined {
  try {
    const root = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const bin = join(root, 'bin');
    for (const napi of existsSync(bin) ? readdirSync(bin) : []) {
      const f = join(bin, napi, process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
      if (existsSync(f)) return f;
    }
  } catch {
    // no onnxruntime-node layout we know: no CUDA
  }
  return undefined;
}

const INSTALL_HINT = "install onnxruntime-node on linux/x64 without ONNXRUNTIME_NODE_INSTALL=skip (its install script then downloads the CUDA 12 provider; it needs CUDA 12 and cuDNN 9)";

/** A tiny model: loading it with the CUDA provider proves the provider and the CUDA libraries load. */
async function cudaLoads(): Promise<string | undefined> {
  if (!cudaProviderFile()) return "onnxruntime's CUDA provider is not installed";
  const { singleNodeModel } = await import('../onnx/single-node-model.js');
  const bytes = singleNodeModel({ opType: 'Identity' }, [1]);
  try {
    const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cuda'] });
    await s.release();
    return undefined;
  } catch (e) {
    return `onnxruntime's CUDA provider does not load (${(e as Error).message.split('\n')[0]})`;
  }
}

export async function useDevice(choice: DeviceChoice = 'auto'): Promise<{ name: 'cpu' | 'cuda'; reason: string }> {
  if (!(DEVICES as readonly string[]).includes(choice)) throw new BadInputError(`--device: unknown device '${choice}' (choose from ${DEVICES.join(', ')})`);
  if (choice === 'cpu') {
    providers = ['cpu'];
    return { name: 'cpu', reason: '--device cpu' };
  }
  const why = await cudaLoads();
  if (why) {
    if (choice === 'cuda') throw new BadInputError(`--device cuda: ${why}; ${INSTALL_HINT}`);
    providers = ['cpu'];
    return { name: 'cpu', reason: `auto: ${why}` };
  }
  providers = ['cuda', 'cpu'];
  return { name: 'cuda', reason: `${choice === 'auto' ? 'auto: ' : ''}onnxruntime's CUDA provider loads` };
}
