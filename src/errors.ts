/**
 * Errors a user can cause. They carry a one-line message and an optional hint;
 * the CLI prints them as `k8sdiag: <message>` (+ `hint: ...`) and exits 2.
 * Anything else is a bug: printed with its stack only under --debug.
 */
export class UserError extends Error {
  readonly hint: string | undefined;
  readonly exitCode = 2;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UserError';
    this.hint = hint;
  }
}

/** Input that cannot be understood (garbage on stdin, an unreadable file). */
export class InputError extends UserError {
  constructor(message: string, hint?: string) {
    super(message, hint);
    this.name = 'InputError';
  }
}

/** Flags that make no sense together or out of range. */
export class UsageError extends UserError {
  constructor(message: string, hint?: string) {
    super(message, hint);
    this.name = 'UsageError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
