/** Progress of a long pass (a training epoch or an evaluation), for the CLI's progress line and library callers. */
export interface EpochProgress {
  /** The training phase (teacher, nad, ft, ft-sam, fst, baseline) or an evaluation pass (`label` says which model). */
  phase: string;
  label?: string;
  epoch: number;
  epochs: number;
  done: number;
  total: number;
  loss: number;
  imagesPerSecond: number;
}
