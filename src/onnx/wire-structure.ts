/**
 * Checks that the parts of an ONNX file the exporter edits (model, graph, initializer and metadata fields)
 * are well-formed protobuf. protobufjs's generated decoder is lenient about wire types; the editor is not,
 * so the loader refuses such a file before anything depends on it.
 */
import { BadInputError } from '../errors.js';
import { GRAPH_INITIALIZER, MODEL_GRAPH, MODEL_METADATA } from './field-numbers.js';
import { parseFields, WireError } from './protobuf-wire.js';

export function checkWireStructure(src: Uint8Array, where: string): void {
  try {
    for (const mf of parseFields(src)) {
      if (mf.no === MODEL_GRAPH && mf.wireType === 2) {
        for (const gf of parseFields(src, mf.dataStart, mf.dataEnd)) {
          if (gf.no === GRAPH_INITIALIZER && gf.wireType === 2) parseFields(src, gf.dataStart, gf.dataEnd);
        }
      } else if (mf.no === MODEL_METADATA && mf.wireType === 2) parseFields(src, mf.dataStart, mf.dataEnd);
    }
  } catch (e) {
    if (e instanceof WireError) throw new BadInputError(`${where}: not a valid ONNX model (malformed protobuf: ${e.message})`);
    throw e;
  }
}
