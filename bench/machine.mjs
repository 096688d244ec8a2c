// The machine a bench ratio was measured on, printed beside every ratio: the CPU model, whether it has AVX-512
// (the ratios to PyTorch depend on it), the cores and the load when the bench started.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

export function describeMachine() {
  const avx512 = /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  return { avx512, text: `${cpus()[0]?.model ?? 'unknown CPU'}, ${avx512 ? 'AVX-512 (avx512f)' : 'no AVX-512 (AVX2 or older)'}, ${cpus().length} cores, 1-min load at start ${loadavg()[0].toFixed(2)}` };
}
