/** Exit codes, one table for the whole tool (README "Exit codes"). */
export const ExitCode = {
  ok: 0,
  gateFailed: 1,
  badInput: 2,
  internal: 3,
  interrupted: 130,
} as const;

/** An error the user can act on: printed as one line, never with a stack trace. */
export class NadError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
    this.name = 'NadError';
  }
}

/** Bad input: usage, an unreadable or invalid model, bad data (exit code 2). */
export class BadInputError extends NadError {
  constructor(message: string) {
    super(message, ExitCode.badInput);
    this.name = 'BadInputError';
  }
}

/** A verification gate (--max-acc-drop, --max-asr) was missed (exit code 1). */
export class GateError extends NadError {
  constructor(message: string) {
    super(message, ExitCode.gateFailed);
    this.name = 'GateError';
  }
}

/**
 * Training diverged (a non-finite loss or weights; exit code 3). `lrsFault` says whether the loss was finite
 * when the phase started: only then can a smaller learning rate help.
 */
export class DivergedError extends NadError {
  constructor(message: string, readonly lr: number, readonly lrsFault: boolean) {
    super(message, ExitCode.internal);
    this.name = 'DivergedError';
  }
}

/** Turns any thrown value into a one-line message and the exit code the table gives it. */
export function describeError(err: unknown): { message: string; exitCode: number } {
  if (err instanceof NadError) return { message: err.message, exitCode: err.exitCode };
  const msg = err instanceof Error ? err.message : String(err);
  return { message: `internal error: ${msg.split('\n')[0]}`, exitCode: ExitCode.internal };
}
