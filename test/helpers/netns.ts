/**
 * Network namespaces for tests: unique names per test (files run in
 * parallel), always removed, even when the test fails.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterEach } from 'vitest';
import { execa } from 'execa';
import { TOOLS, gate } from './tools.js';
import type { Tool } from './tools.js';

export interface Netns {
  name: string;
  /** Run a command inside the namespace; rejects on failure. */
  exec: (cmd: string, args: string[], opts?: { input?: string; timeout?: number }) => Promise<{ stdout: string; stderr: string; exitCode: number }>;
  remove: () => Promise<void>;
}

/** Root with iproute2 and iptables (and any more tools given): required in CI (CI=true), where a skip would hide a missing install. */
export async function netnsGate(...more: Tool[]): Promise<{ ok: boolean; why: string }> {
  return gate({ root: true }, TOOLS.ip, TOOLS.iptables, ...more);
}

/** Whether tracefs shows the skb:kfree_skb tracepoint (bpftrace attaches through it). */
export const TRACEFS_MOUNTED = existsSync('/sys/kernel/tracing/events/skb/kfree_skb/format');

/** netnsGate with bpftrace and the tools given, and tracefs mounted: what the kernel-evidence lab tests need. */
export async function kernelLabGate(...more: Tool[]): Promise<{ ok: boolean; why: string }> {
  const lab = await netnsGate(TOOLS.bpftrace, ...more);
  return lab.ok && !TRACEFS_MOUNTED ? { ok: false, why: 'skipped: tracefs is not mounted at /sys/kernel/tracing' } : lab;
}

/** netnsGate's answer alone. */
export async function canUseNetns(): Promise<boolean> {
  return (await netnsGate()).ok;
}

export async function createNetns(prefix: string): Promise<Netns> {
  const name = `k8sdiag-${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
  await execa('ip', ['netns', 'add', name]);
  const ns: Netns = {
    name,
    exec: async (cmd, args, opts = {}) => {
      const r = await execa('ip', ['netns', 'exec', name, cmd, ...args], {
        reject: false,
        timeout: opts.timeout ?? 20_000,
        ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
      });
      return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1 };
    },
    remove: async () => {
      await execa('ip', ['netns', 'del', name], { reject: false });
    },
  };
  try {
    const up = await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    if (up.exitCode !== 0) throw new Error(up.stderr);
  } catch (err) {
    await ns.remove();
    throw err;
  }
  return ns;
}

/**
 * Start the built `k8sdiag serve` inside a namespace and wait for its "listening" line.
 * The caller kills it (SIGTERM) when done; it also stops by itself after --duration.
 */
export async function serveIn(nsName: string, args: string[]): Promise<import('node:child_process').ChildProcess> {
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('./run.js');
  const p = spawn('ip', ['netns', 'exec', nsName, process.execPath, BIN, 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    p.stderr!.on('data', (d) => {
      err += d;
      if (err.includes('listening')) resolve();
    });
    p.on('exit', () => reject(new Error(`serve exited: ${err}`)));
  });
  return p;
}

/**
 * For a test file: a createNetns whose namespaces are removed after each test, pass or fail. Call it once at the
 * top of the file.
 */
export function netnsPerTest(): (prefix: string) => Promise<Netns> {
  const made: Netns[] = [];
  afterEach(async () => {
    while (made.length) await made.pop()!.remove();
  });
  return async (prefix) => {
    const n = await createNetns(prefix);
    made.push(n);
    return n;
  };
}
