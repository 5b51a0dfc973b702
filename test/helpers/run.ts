/** Run the built CLI as a user would: a child process, stdout, stderr, exit code. */
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { execa } from 'execa';

export const BIN = fileURLToPath(new URL('../../bin/k8sdiag.js', import.meta.url));

export function fixture(path: string): string {
  return fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
}

export function readFixture(path: string): string {
  return readFileSync(fixture(path), 'utf8');
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export async function run(args: string[], opts: { input?: string | Uint8Array; env?: Record<string, string>; timeout?: number; prefix?: string[]; nodeArgs?: string[] } = {}): Promise<RunResult> {
  const cmd = opts.prefix ? opts.prefix[0]! : process.execPath;
  const node = [...(opts.nodeArgs ?? []), BIN, ...args];
  const cmdArgs = opts.prefix ? [...opts.prefix.slice(1), process.execPath, ...node] : node;
  const r = await execa(cmd, cmdArgs, {
    reject: false,
    timeout: opts.timeout ?? 20_000,
    env: { NO_COLOR: '1', ...opts.env },
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
  });
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1 };
}
