/**
 * conntrack input at its edges: two snapshots pasted together, dated kernel
 * log lines, a stray Latin-1 byte, and input too large to be what it claims.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConntrack } from '../../src/commands/conntrack.js';
import { lineDate, parseConntrackInput } from '../../src/conntrack/parse.js';
import { decodeText } from '../../src/input.js';
import { readFixture, run } from '../helpers/run.js';

// Made in a hook its cleanup pairs: a file whose tests all skip leaves nothing behind.
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-conntrack-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const text = (t: string) => ({ kind: 'text' as const, text: t, origin: 'stdin' });

describe('two conntrack -S snapshots in one input', () => {
  const before = readFixture('conntrack/conntrack-S-4.x-ignore-telegraf8955.txt');
  // The same node a while later: insert_failed up by 2 on cpu=1 and by 5 on cpu=3.
  const after = before
    .replace(/^(cpu=1\s.*insert_failed=)(\d+)/m, (_m, a: string, n: string) => `${a}${Number(n) + 2}`)
    .replace(/^(cpu=3\s.*insert_failed=)(\d+)/m, (_m, a: string, n: string) => `${a}${Number(n) + 5}`);

  it('are compared (before/after), never summed', async () => {
    const one = await runConntrack({ source: text(before) });
    const both = await runConntrack({ source: text(`${before}\n${after}`) });
    expect(both.cpus).toBe(one.cpus);
    expect(both.counters.insert_failed).toBe((one.counters.insert_failed ?? 0) + 7);
    expect(both.watch).toMatchObject({ origin: 'snapshots', seconds: null });
    expect(both.watch?.deltas.insert_failed).toMatchObject({ delta: 7, perSecond: null });
    const f = both.findings.find((x) => x.code === 'INSERT_FAILED')!;
    expect(f.severity).toBe('critical');
    expect(f.message).toMatch(/rising: 7 between the two snapshots/);
    expect(both.warnings.join('\n')).toMatch(/2 snapshots of conntrack-S in the input/);
  });

  it('the CLI shows the delta column for them', async () => {
    const res = await run(['conntrack'], { input: `${before}\n${after}` });
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toContain('delta (2 snapshots)');
  });
});

describe('table-full lines with a date', () => {
  const now = new Date(2026, 10, 25, 12, 0, 0);

  it('reads syslog, ISO 8601 and dmesg -T dates', () => {
    expect(lineDate('Mar  3 04:12:55 node-7 kernel: [8812331.220142] nf_conntrack: table full, dropping packet', now)?.getTime()).toBe(new Date(2026, 2, 3, 4, 12, 55).getTime());
    // December seen in November: last year's.
    expect(lineDate('Dec 31 23:59:00 node kernel: nf_conntrack: table full, dropping packet', now)?.getFullYear()).toBe(2025);
    expect(lineDate('2026-11-25T11:50:00+0000 node kernel: nf_conntrack: table full, dropping packet', now)?.toISOString()).toBe('2026-11-25T11:50:00.000Z');
    expect(lineDate('[Wed Nov 25 11:59:00 2026] nf_conntrack: table full, dropping packet', now)?.getTime()).toBe(new Date(2026, 10, 25, 11, 59, 0).getTime());
    expect(lineDate('[  481.148257] nf_conntrack: table full, dropping packet', now)).toBeUndefined();
  });

  it('a piped syslog line months old is a warning; the same line minutes old is critical; an undated one says its age is unknown', async () => {
    const old = readFixture('conntrack/syslog-table-full-older.txt');
    const months = await run(['conntrack', '--json'], { input: old, env: { K8SDIAG_NOW: '2026-11-25T12:00:00' } });
    const f1 = JSON.parse(months.stdout).findings.find((f: { code: string }) => f.code === 'TABLE_FULL');
    expect(f1.severity).toBe('warning');
    expect(f1.message).toMatch(/days ago/);
    const minutes = await run(['conntrack', '--json'], { input: old, env: { K8SDIAG_NOW: '2026-03-03T04:20:00' } });
    expect(JSON.parse(minutes.stdout).findings.find((f: { code: string }) => f.code === 'TABLE_FULL').severity).toBe('critical');
    const undated = await runConntrack({ source: text(readFixture('conntrack/dmesg-6.18-table-full.txt')) });
    expect(undated.findings.find((f) => f.code === 'TABLE_FULL')!.message).toMatch(/its age is unknown/);
  });
});

describe('encoding and size', () => {
  it('one Latin-1 byte in a comment does not make the input binary', () => {
    const bytes = Buffer.concat([Buffer.from('# node caf'), Buffer.from([0xe9]), Buffer.from('\n'), Buffer.from(readFixture('conntrack/conntrack-S-6.18-idle.txt'))]);
    const t = decodeText(bytes);
    expect(t).toContain('café');
    expect(parseConntrackInput(t).stats).toHaveLength(1);
  });

  it('svc reads a dump with a Latin-1 byte in a comment', async () => {
    const file = join(dir, 'latin1.txt');
    writeFileSync(file, Buffer.concat([Buffer.from('# Generated on n\xf6de-1\n', 'latin1'), Buffer.from(readFixture('svc/iptables-save-overall.txt'))]));
    const res = await run(['svc', '--file', file, '--json']);
    expect(res.stderr).not.toMatch(/binary/);
    expect(JSON.parse(res.stdout).services.length).toBeGreaterThan(0);
  });

  it('a file larger than the input can be is one line, exit 2, without reading it all', async () => {
    const file = join(dir, 'big.txt');
    writeFileSync(file, Buffer.alloc(65 << 20, 0x41));
    const res = await run(['conntrack', '--file', file]);
    expect(res.exitCode).toBe(2);
    expect(res.stderr.split('\n')[0]).toMatch(/^k8sdiag: .*big\.txt: 65 MiB, more than the 64 MiB this input can be$/);
    rmSync(file);
  });
});

describe('a log of a full table', () => {
  it('hundreds of thousands of "table full" lines: counted, the first and last three kept, output small', async () => {
    const { run } = await import('../helpers/run.js');
    const lines = Array.from({ length: 200_000 }, (_, i) => `[${(1000 + i / 1000).toFixed(6)}] nf_conntrack: nf_conntrack: table full, dropping packet`);
    const r = await run(['conntrack', '--json'], { input: `${lines.join('\n')}\ncpu=0 found=0 insert_failed=0 drop=200000\n`, timeout: 60_000 });
    const doc = JSON.parse(r.stdout) as { kernelLog: { tableFullLines: number; tableFull: string[] }; findings: Array<{ code: string; message: string }> };
    expect(doc.kernelLog.tableFullLines).toBe(200_000);
    expect(doc.kernelLog.tableFull).toEqual([...lines.slice(0, 3), ...lines.slice(-3)]);
    expect(r.stdout.length).toBeLessThan(20_000);
    expect(doc.findings.find((f) => f.code === 'TABLE_FULL')!.message).toMatch(/200000 times/);
  }, 60_000);
});

describe('an input line with an escape sequence', () => {
  it('is quoted with the escape shown, never written raw to the terminal', async () => {
    const { run } = await import('../helpers/run.js');
    const r = await run(['conntrack'], { input: 'cpu=0 found=0 \u001b[31m=1 insert_failed=0\n' });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).not.toContain('\u001b');
    expect(r.stderr).toContain('\\x1b[31m=1');
  });
});

describe('conntrack --live --watch stopped by a signal', () => {
  it.skipIf(process.getuid?.() !== 0)('SIGINT: exit 130, the report of the time that passed, marked interrupted', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../helpers/run.js');
    const child = spawn(process.execPath, [BIN, 'conntrack', '--live', '--watch', '10', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // Within the 10 s wait (its progress line is for a terminal only); a signal before it began ends it at once too.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    const doc = JSON.parse(out) as { interrupted: boolean; watch: { seconds: number } };
    expect(doc.interrupted).toBe(true);
    expect(doc.watch.seconds).toBeLessThan(9);
  });
});
