/** Runs the CLI, SIGKILLs it (no chance to clean up) once its checkpoint has reached a phase, and waits for it to end. */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function runCli(args: string[]): Promise<number | null> {
  return new Promise((r) => spawn(process.execPath, args, { stdio: 'ignore' }).on('exit', (c) => r(c)));
}

export async function killAtPhase(args: string[], checkpointDir: string, phase: string): Promise<void> {
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const f = join(checkpointDir, 'nad-onnx-checkpoint.bin');
      if (existsSync(f) && readFileSync(f).includes(Buffer.from(`"phase":"${phase}"`))) {
        clearInterval(timer);
        child.kill('SIGKILL');
        resolve();
      }
    }, 50);
  });
  await exited;
}
