/**
 * Library API of nad-onnx: the same behaviour as the CLI, and exactly what the README's "Library API"
 * documents. Everything else in dist/ is internal and may change without notice.
 */
export { clean, GateRejection, type CleanOptions } from './clean.js';
export type { CleanReport } from './report/clean-report.js';
export { evaluate, type EvaluateOptions } from './evaluate.js';
export { inspect, type InspectResult, type InspectOptions } from './inspect.js';
export { scan, type ScanOptions } from './run-scan.js';
export type { ScanResult, ScanJson, ScanClass, SecondarySignal } from './scan/scan.js';
export { DEFAULT_METHOD, METHODS, type MethodName, type MethodOptions } from './defences/method-options.js';
export type { Metrics } from './verify/metrics.js';
export type { EpochProgress } from './progress.js';
export type { EpochLoss } from './training/epoch-loop.js';
export type { BackendChoice } from './backend/select-backend.js';
export type { EngineChoice } from './training/engine.js';
export type { DeviceChoice } from './verify/device.js';
export { ExitCode, NadError, BadInputError, GateError } from './errors.js';
