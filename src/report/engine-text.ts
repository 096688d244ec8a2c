/** "onnxruntime", "tfjs (wasm)", or "teacher-engine / nad-engine" when the two phases differ. */
import type { CleanReport } from '../clean.js';

export function engineText(r: Pick<CleanReport, 'engine' | 'backend'>): string {
  const name = (e: string) => (e === 'tfjs' ? `tfjs (${r.backend.name})` : e);
  const { teacher, nad } = r.engine;
  return teacher === nad || teacher === 'none' || teacher === 'checkpoint' ? name(nad) : `${name(teacher)} / ${name(nad)}`;
}
