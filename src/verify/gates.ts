/**
 * The verdict on a cleaned model: the gates a pipeline set (--max-acc-drop, --max-asr, --max-anomaly: missed means nothing is
 * written), and warnings for what nobody gated (a large accuracy drop, with the fine-tuning baseline's beside it).
 */
import type { Metrics } from './metrics.js';

/** A drop of acc_all beyond this many points, with no --max-acc-drop set, is warned about. */
export const WARN_ACC_DROP = 3;

export interface Verdict {
  failed: string[];
  warnings: string[];
}

export function judge(v: {
  before: Metrics; after: Metrics; baseline: Metrics | null; label: string; maxAccDrop?: number; maxAsr?: number;
  /** What the baseline is, as the warning names it (default: plain fine-tuning). */
  baselineName?: string;
  /** --max-anomaly and the cleaned model's largest anomaly index (clean --scan). */
  maxAnomaly?: number; anomalyAfter?: number;
}): Verdict {
  const failed: string[] = [], warnings: string[] = [];
  const drop = v.before.acc_all - v.after.acc_all;
  if (v.maxAccDrop !== undefined && drop > v.maxAccDrop) failed.push(`acc_all dropped ${drop.toFixed(2)} points (limit --max-acc-drop ${v.maxAccDrop})`);
  if (v.maxAsr !== undefined && v.after.asr !== null && v.after.asr > v.maxAsr) failed.push(`asr ${v.after.asr.toFixed(2)}% is above --max-asr ${v.maxAsr}`);
  if (v.maxAnomaly !== undefined && v.anomalyAfter !== undefined && v.anomalyAfter > v.maxAnomaly) {
    failed.push(`the cleaned model's largest anomaly index ${v.anomalyAfter.toFixed(2)} is above --max-anomaly ${v.maxAnomaly}`);
  }
  if (v.maxAccDrop === undefined && drop > WARN_ACC_DROP) {
    const b = v.baseline ? `; ${v.baselineName ?? 'plain fine-tuning'} lost ${(v.before.acc_all - v.baseline.acc_all).toFixed(2)}` : '';
    warnings.push(`warning: ${v.label} lost ${drop.toFixed(2)} points of acc_all (${v.before.acc_all.toFixed(2)} -> ${v.after.acc_all.toFixed(2)})${b}; set --max-acc-drop to refuse such a model`);
  }
  return { failed, warnings };
}
