/** A decoded ONNX model as the loader hands it on (load-model.ts reads it; untie-initializers.ts adjusts it). */
import type { ModelProto } from '../onnx/onnx-schema.js';
import type { TensorValue } from './tensor-data.js';

export interface ExternalRef {
  file: string; // absolute, resolved path inside the model folder
  offset: number;
  length: number;
}

export interface LoadedModel {
  path: string;
  /** The file's bytes exactly as read; export patches a copy of them. */
  bytes: Uint8Array;
  proto: ModelProto;
  /** Every initializer, decoded. */
  initializers: Map<string, TensorValue>;
  /** Initializers whose data lives in an external file, with the checked location. */
  external: Map<string, ExternalRef>;
  /** Initializers split off a shared one (untie-initializers.ts): name -> the initializer it copies. */
  untied: Map<string, string>;
  opset: number;
}
