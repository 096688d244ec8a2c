#!/usr/bin/env node
/** nad-onnx command line: parses arguments, runs a command, maps errors to the exit-code table. */
import { Command, CommanderError, Option } from 'commander';
import { BACKENDS } from '../backend/select-backend.js';
import { describeError, ExitCode } from '../errors.js';
import { formatInspect, inspect } from '../inspect.js';

import { TOOL_VERSION as VERSION } from '../export/provenance.js';

function fail(message: string, exitCode: number): never {
  process.stderr.write(`nad-onnx: ${message}\n`);
  process.exit(exitCode);
}

const program = new Command();
program
  .name('nad-onnx')
  .description('Remove backdoors from ONNX image classifiers with Neural Attention Distillation')
  .version(VERSION)
  .showSuggestionAfterError(true)
  .exitOverride();

const backendOption = () => new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKENDS).default('auto');

program
  .command('inspect')
  .description('show the input, output, ops, parameters and residual-group taps of a model')
  .argument('<model>', 'ONNX model file')
  .option('--json', 'print one JSON object instead of the summary')
  .option('--taps <names>', 'comma-separated tensor names to use as taps instead of the detected ones')
  .addOption(backendOption())
  .addHelpText('after', '\nExamples:\n  $ nad-onnx inspect model.onnx\n  $ nad-onnx inspect model.onnx --json | jq .taps')
  .action(async (model: string, opts: { json?: boolean; taps?: string; backend: (typeof BACKENDS)[number] }) => {
    const r = await inspect(model, { backend: opts.backend, taps: opts.taps?.split(',').filter(Boolean) });
    process.stdout.write(opts.json ? JSON.stringify(r) + '\n' : formatInspect(r) + '\n');
  });

async function main(): Promise<void> {
  process.on('SIGINT', () => fail('interrupted', ExitCode.interrupted));
  process.on('SIGTERM', () => fail('interrupted', ExitCode.interrupted));
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) process.exit(0);
      process.exit(ExitCode.badInput); // commander already printed its one-line message
    }
    const { message, exitCode } = describeError(e);
    fail(message, exitCode);
  }
}

await main();
