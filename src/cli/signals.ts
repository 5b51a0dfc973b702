/**
 * One behaviour for every long-running command on SIGINT and SIGTERM: the first stops the work, which then reports
 * what it gathered, marked interrupted; a second quits at once. An interrupted run never exits 0: it exits as a shell
 * reports a signal, 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), after its report.
 */
const NUMBER: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 2, SIGTERM: 15 };

export interface Stopper {
  signal: AbortSignal;
  /** The exit code of a run a signal stopped, or undefined. */
  exitCode(): number | undefined;
  dispose(): void;
}

export function stopOnSignals(say: string): Stopper {
  const ac = new AbortController();
  let by: 'SIGINT' | 'SIGTERM' | undefined;
  const stop = (sig: 'SIGINT' | 'SIGTERM'): void => {
    if (by !== undefined) process.exit(128 + NUMBER[sig]);
    by = sig;
    process.stderr.write(`\nk8sdiag: ${sig}: ${say} (again to quit at once)\n`);
    ac.abort();
  };
  const onInt = (): void => stop('SIGINT');
  const onTerm = (): void => stop('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: ac.signal,
    exitCode: () => (by === undefined ? undefined : 128 + NUMBER[by]),
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
