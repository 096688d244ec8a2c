/** Field numbers from onnx.proto that the wire-level reader and editor use. */
export const MODEL_GRAPH = 7, MODEL_METADATA = 14;
export const GRAPH_INITIALIZER = 5;
export const TENSOR_FLOAT_DATA = 4, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9, TENSOR_EXTERNAL_DATA = 13, TENSOR_DATA_LOCATION = 14;
export const ENTRY_KEY = 1, ENTRY_VALUE = 2;
