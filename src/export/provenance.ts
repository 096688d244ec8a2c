/** Provenance recorded in the cleaned model's metadata_props (no timestamps: reruns are byte-identical). */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const TOOL_VERSION: string = (require('../../package.json') as { version: string }).version;

export function provenanceMetadata(method: string, parameters: Record<string, unknown>, sourceSha256: string): [string, string][] {
  return [
    ['nad-onnx.version', TOOL_VERSION],
    ['nad-onnx.method', method],
    ['nad-onnx.parameters', JSON.stringify(parameters)],
    ['nad-onnx.source_sha256', sourceSha256],
  ];
}
