/**
 * NAD's distillation term for one tap: beta * MSE(attention(student tap), attention(teacher tap)). The
 * frozen teacher's tap tensor (NCHW, from onnxruntime) is a per-batch input, so no gradient reaches it.
 */
import { attentionDistance, attentionMap } from './attention-map.js';
import type { LossTerm, TermContext } from './loss-term.js';

/** Name of the per-batch input that carries the teacher's tap k. */
export function teacherTapInput(k: number): string {
  return `loss#teacher_tap_${k}`;
}

export function attentionDistillationTerm(k: number, tap: string, chw: readonly number[], beta: number, p: number): LossTerm {
  const [c, h, w] = chw as [number, number, number];
  const input = teacherTapInput(k);
  return {
    name: `at_${k}`, weight: beta, tensors: [tap], params: [],
    inputs: [{ name: input, dims: [-1, c, h, w] }],
    build<T>(ctx: TermContext<T>): T {
      const s = ctx.tensor(tap);
      const o = ctx.ops;
      return attentionDistance(o, attentionMap(o, s.t, s.channelAxis, h * w, p), attentionMap(o, ctx.input(input), 1, h * w, p));
    },
  };
}
