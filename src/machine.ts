/**
 * What the bytes of a training run depend on besides its inputs: onnxruntime (and tfjs) pick kernels by
 * CPU features, so the same seed gives identical bytes on the same machine and CPU kind only.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';

function cpuFlags(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

/** The CPU model, whether it has AVX-512, and the onnxruntime version, as one line. */
export function machineSignature(): string {
  const ortVersion = (() => {
    try {
      return (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
    } catch {
      return 'unknown';
    }
  })();
  const flags = cpuFlags();
  const isa = /\bavx512f\b/.test(flags) ? 'AVX-512' : /\bavx2\b/.test(flags) ? 'AVX2' : process.arch;
  return `${cpus()[0]?.model.trim() ?? 'unknown CPU'} (${isa}), onnxruntime ${ortVersion}`;
}
