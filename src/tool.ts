/** Running a system tool for live reading: never throws, says in one phrase why it failed. */
import { deniedAdvice } from './privilege.js';

export interface Unavailable {
  source: string;
  reason: string;
}

export interface ToolResult {
  stdout: string;
  stderr: string;
  /** Why it failed (not installed, timed out, its first stderr line), or undefined. */
  failed: string | undefined;
}

export async function runTool(file: string, args: string[], opts: { timeoutMs: number; maxBuffer?: number }): Promise<ToolResult> {
  const { execa } = await import('execa');
  const r = await execa(file, args, {
    reject: false,
    timeout: opts.timeoutMs,
    stdin: 'ignore',
    env: { LC_ALL: 'C' },
    ...(opts.maxBuffer !== undefined ? { maxBuffer: opts.maxBuffer } : {}),
  });
  const stdout = typeof r.stdout === 'string' ? r.stdout : '';
  const stderr = typeof r.stderr === 'string' ? r.stderr : '';
  if (r.failed) {
    const code = (r as { code?: string }).code;
    if (code === 'ENOENT') return { stdout, stderr, failed: `${file} is not installed` };
    if (r.timedOut) return { stdout, stderr, failed: `${file} did not answer within ${opts.timeoutMs / 1000}s` };
    if ((r as { isMaxBuffer?: boolean }).isMaxBuffer) return { stdout: '', stderr, failed: `${file} printed more than ${((opts.maxBuffer ?? 0) / (1 << 20)).toFixed(0)} MiB, past the input cap` };
    // Refused for lack of privilege: the process could not run it, or the tool said so. Said as what to do.
    const denied = code === 'EACCES' || code === 'EPERM' || /permission denied|operation not permitted|you must be root/i.test(stderr);
    if (denied) return { stdout, stderr, failed: `${file}: ${deniedAdvice(file)}` };
    const firstErr =
      stderr.split('\n').find((l) => l.trim() !== '') ??
      (r.exitCode !== undefined ? `exit code ${r.exitCode}` : r.signal !== undefined ? `killed by ${r.signal}` : `could not run it${code !== undefined ? ` (${code})` : ''}`);
    return { stdout, stderr, failed: firstErr.trim() };
  }
  return { stdout, stderr, failed: undefined };
}
