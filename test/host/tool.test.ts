/** A live tool's output is read up to a cap, and past it the tool is said to have printed too much, never held whole. */
import { describe, expect, it } from 'vitest';
import { runTool } from '../../src/tool.js';
import { deniedAdvice } from '../../src/privilege.js';

describe('runTool', () => {
  it('past maxBuffer: failed, with the cap said, and nothing of the output kept', async () => {
    const r = await runTool('sh', ['-c', 'yes | head -c 3000000'], { timeoutMs: 10_000, maxBuffer: 1 << 20 });
    expect(r.failed).toBe('sh printed more than 1 MiB, past the input cap');
    expect(r.stdout).toBe('');
    const ok = await runTool('sh', ['-c', 'printf hello'], { timeoutMs: 10_000, maxBuffer: 1 << 20 });
    expect(ok).toMatchObject({ stdout: 'hello', failed: undefined });
  });
});

describe('runTool refused or stopped', () => {
  it('never "exit code undefined": a file it may not run is permission denied with what to do; a tool killed says by what', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-tool-'));
    try {
      const file = join(dir, 'not-executable');
      writeFileSync(file, '#!/bin/sh\necho hi\n', { mode: 0o644 });
      const r = await runTool(file, [], { timeoutMs: 5000 });
      // Said by who runs it: root is told the capability, anyone else to run as root.
      const advice = process.getuid?.() === 0 ? 'needs NET_ADMIN (kubectl debug node/NAME --profile=netadmin, or a pod with that capability)' : 'run as root with NET_ADMIN (kubectl debug node/NAME --profile=netadmin, or a pod with runAsUser: 0)';
      expect(r.failed).toBe(`${file}: permission denied: ${advice}`);
      const said = await runTool('sh', ['-c', 'echo "iptables-save v1.8.9: Permission denied (you must be root)" >&2; exit 4'], { timeoutMs: 5000 });
      expect(said.failed).toBe(`sh: permission denied: ${advice}`);
      const killed = await runTool('sh', ['-c', 'kill -KILL $$'], { timeoutMs: 5000 });
      expect(killed.failed).toBe('killed by SIGKILL');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deniedAdvice', () => {
  it('tells a non-root user to run as root, root the capability the tool needs, the kernel log its own', () => {
    expect(deniedAdvice('iptables-save', 65532)).toBe('permission denied: run as root with NET_ADMIN (kubectl debug node/NAME --profile=netadmin, or a pod with runAsUser: 0)');
    expect(deniedAdvice('conntrack', 0)).toBe('permission denied: needs NET_ADMIN (kubectl debug node/NAME --profile=netadmin, or a pod with that capability)');
    expect(deniedAdvice('dmesg', 0)).toBe('permission denied: the kernel log needs CAP_SYSLOG (kubectl debug node/NAME --profile=sysadmin)');
  });
});
