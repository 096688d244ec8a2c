/** "onnxruntime", "tfjs (wasm)", or "teacher-engine / method-engine" when the phases differ. */
import type { CleanReport } from './clean-report.js';

export function engineText(r: Pick<CleanReport, 'engine' | 'backend'>): string {
  const name = (e: string) => (e === 'tfjs' ? `tfjs (${r.backend.name})` : e);
  const ran = [...new Set(Object.values(r.engine).filter((e) => e !== 'none' && e !== 'checkpoint'))];
  return ran.length === 0 ? 'none' : ran.map(name).join(' / ');
}
