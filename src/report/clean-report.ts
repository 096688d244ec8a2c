/** The report `clean` produces (--json, --report; schemas/clean-report.schema.json). The schema only grows. */
import type { EpochLoss } from '../training/epoch-loop.js';
import type { Metrics } from '../verify/metrics.js';
import type { ScanJson } from '../scan/scan.js';

export interface CleanReport {
  tool: { name: 'nad-onnx'; version: string };
  command: 'clean';
  /** The defence that made the output (nad, ft, ft-sam, fst). */
  method: string;
  model: { path: string; sha256: string };
  output: { path: string; sha256: string | null; written: boolean };
  parameters: Record<string, unknown>;
  seed: number;
  backend: { name: string; reason: string };
  /** Where onnxruntime ran (--device). */
  device: { name: 'cpu' | 'cuda'; reason: string; threads: number };
  /** The training engine of each phase ('none': a ready --teacher; 'checkpoint': a phase a resumed run had finished). NAD: teacher, nad. */
  engine: Record<string, string>;
  data: { train: { source: string; n: number }; test: { source: string; n: number } };
  taps: { name: string; shape: number[] }[];
  /** Per-epoch losses of each phase. NAD: teacher, nad; other methods: teacher (the baseline) and their own phase. */
  losses: Record<string, EpochLoss[]>;
  before: Metrics;
  /** The plain fine-tuning baseline (NAD: its teacher, which --teacher-method or --teacher can change); null with --no-baseline. */
  teacher: Metrics | null;
  /** What `teacher` measures: the method that made it ('ft' for plain fine-tuning, 'given' for --teacher, 'output' when the method is ft itself). */
  baseline: { method: string } | null;
  after: Metrics;
  der: { teacher: number | null; after: number | null };
  /** A chain's models after each stage but the last (the last is `after`). */
  stages?: { method: string; label: string; metrics: Metrics; der: number | null }[];
  gates: { passed: boolean; failed: string[] };
  /** One-line warnings the CLI also prints (e.g. a large accuracy drop with no gate set). */
  warnings: string[];
  export_check: { max_abs_logit_diff: number };
  /** clean --scan: Neural Cleanse on the model before and on the cleaned model (schemas/scan.schema.json). */
  scan?: { before: ScanJson; after: ScanJson };
  /**
   * Memory: the parameters, the method's state (optimiser moments, perturbed copies), the planned peak and its
   * parts (checked against the budget before training), the budget, and the measured peak RSS.
   */
  memory: {
    parameters_mb: number; training_state_mb: number; planned_peak_mb: number; budget_mb: number; measured_peak_mb: number;
    parts: { what: string; mb: number }[];
  };
  timings: Record<string, number>;
}

/** The row label of each model in tables. */
export function methodLabel(method: string): string {
  const one = (m: string) => ({ nad: 'NAD', ft: 'FT', 'ft-sam': 'FT-SAM', fst: 'FST', anp: 'ANP', sau: 'SAU', rnp: 'RNP' } as Record<string, string>)[m] ?? m;
  return method.split('+').map(one).join(' + ');
}

export function baselineLabel(r: Pick<CleanReport, 'method' | 'baseline'>): string {
  const m = r.baseline?.method ?? 'ft';
  // A given --teacher keeps the row name it always had: NAD's own tables call the teacher so.
  if (r.method === 'nad') return m === 'ft' || m === 'given' ? 'fine-tuning (teacher)' : `${methodLabel(m)} (teacher)`;
  return m === 'output' ? 'fine-tuning (= output)' : 'fine-tuning (baseline)';
}
