/** Runs the built CLI (dist/) as a user would. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './fixtures.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous, so the test worker's event loop stays free while the CLI runs (vitest's RPC needs it). */
export function cli(args: string[], opts: { cwd?: string; timeout?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], {
      cwd: opts.cwd ?? ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 600_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One line on stderr, no stack trace. */
export function isOneLineError(stderr: string): boolean {
  const lines = stderr.trim().split('\n');
  return lines.length === 1 && !/\n\s+at /.test(stderr) && lines[0]!.startsWith('nad-onnx: ');
}
