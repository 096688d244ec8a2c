/** Library API of nad-onnx: the same behaviour as the CLI. */
export { clean, defaultBetas, GateRejection, type CleanOptions, type CleanReport } from './clean.js';
export { evaluate, type EvaluateOptions } from './evaluate.js';
export { inspect, formatInspect, type InspectResult, type InspectOptions } from './inspect.js';
export type { Metrics } from './verify/metrics.js';
export type { EpochProgress, EpochLoss } from './training/epoch-loop.js';
export { ExitCode, NadError, BadInputError, GateError } from './errors.js';
export { TrainableModel } from './import/trainable-model.js';
export { loadModel } from './import/load-model.js';
export { useBackend, BACKENDS, type BackendChoice } from './backend/select-backend.js';
export { modelBytes, editModelBytes, writeFileAtomic } from './export/write-model.js';
