/** Library API of nad-onnx. */
export { inspect, formatInspect, type InspectResult, type InspectOptions } from './inspect.js';
export { ExitCode, NadError, BadInputError, GateError } from './errors.js';
export { TrainableModel } from './import/trainable-model.js';
export { loadModel } from './import/load-model.js';
export { useBackend, BACKENDS, type BackendChoice } from './backend/select-backend.js';
export { modelBytes, editModelBytes, writeFileAtomic } from './export/write-model.js';
