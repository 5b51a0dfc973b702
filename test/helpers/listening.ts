/**
 * A long-running k8sdiag (drops, watch) started as a user would, in a network namespace where asked: resolved once its
 * stderr says it listens; stopped by a signal, with what it printed and its exit code. Started in a process group of
 * its own, so that when it never listens the group (its bpftrace, conntrack -E or tcpdump too) is killed, not orphaned.
 */
import { spawn } from 'node:child_process';
import { BIN } from './run.js';

export interface Listening {
  /** Send `signal` (its summary follows), and wait for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number; stdout: string; stderr: string }>;
}

/** `k8sdiag ARGS`, inside network namespace `netns` (by nsenter: the host's /sys stays, and with it tracefs) if given. */
export async function startListening(args: string[], ready: RegExp, opts: { netns?: string; timeoutMs?: number } = {}): Promise<Listening> {
  const argv = [process.execPath, BIN, ...args];
  const p = opts.netns !== undefined ? spawn('nsenter', [`--net=/run/netns/${opts.netns}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], detached: true }) : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => p.once('exit', (code) => resolve(code ?? -1)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      process.kill(-p.pid!, 'SIGKILL');
      reject(new Error(`k8sdiag ${args[0]} did not start: ${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    const check = (): void => {
      if (ready.test(stderr)) {
        clearTimeout(t);
        resolve();
      }
    };
    p.stderr.on('data', check);
    void exited.then(() => {
      clearTimeout(t);
      reject(new Error(`k8sdiag ${args[0]} exited: ${stderr}`));
    });
  });
  return {
    stop: async (signal = 'SIGINT') => {
      p.kill(signal);
      const code = await exited;
      return { code, stdout, stderr };
    },
  };
}
