/** JSON Schema validation of the CLI's JSON output (schemas/). */
import { join } from 'node:path';
import Ajv from 'ajv';
import { readJson, ROOT } from './fixtures.js';

const ajv = new (Ajv as unknown as typeof Ajv.default)({ allErrors: true });
ajv.addSchema(readJson(join(ROOT, 'schemas', 'metrics.schema.json')), 'metrics.schema.json');
ajv.addSchema(readJson(join(ROOT, 'schemas', 'clean-report.schema.json')), 'clean-report.schema.json');
ajv.addSchema(readJson(join(ROOT, 'schemas', 'scan.schema.json')), 'scan.schema.json');

export function schemaErrors(schema: 'metrics.schema.json' | 'clean-report.schema.json' | 'scan.schema.json', value: unknown): string {
  const validate = ajv.getSchema(schema)!;
  return validate(value) ? '' : ajv.errorsText(validate.errors);
}
