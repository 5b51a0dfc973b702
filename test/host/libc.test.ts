/**
 * The workload's libc is read from the workload's filesystem, never from doctor's own: on fake /proc trees (symlinks
 * stand in for /proc/<pid>/root), and for real: doctor chrooted into a filesystem that looks musl, in a PID namespace
 * shared with a glibc process, as `kubectl debug --target` shares the target container's.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { libcOfRoot, libcVersion, targetLibc } from '../../src/host/libc.js';
import { startResponder } from '../helpers/responders.js';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'k8sdiag-libc-'));
  made.push(root);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return root;
}
const haveMusl = process.arch === 'x64' && (await execa('musl-gcc', ['--version'], { reject: false })).exitCode === 0;
/** A program built by musl-gcc: its ELF header names musl's loader. */
async function muslProgram(flags: string[]): Promise<string> {
  const d = tree({ 'main.c': 'int main(void) { return 0; }\n' });
  await execa('musl-gcc', [...flags, '-o', join(d, 'prog'), join(d, 'main.c')]);
  return join(d, 'prog');
}
const MUSL = { 'lib/ld-musl-x86_64.so.1': '', 'lib/apk/db/installed': 'C:Q1abc\nP:busybox\nV:1.36.1-r2\n\nC:Q1def\nP:musl\nV:1.2.4-r2\nA:x86_64\n' };
const GLIBC = { 'lib64/ld-linux-x86-64.so.2': '', 'lib/x86_64-linux-gnu/libc.so.6': '\x7fELF\0\0junk\0GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.\nCopyright\0' };

describe('a filesystem\'s libc', () => {
  it('by its loader, with its version where the filesystem says it', () => {
    const m = tree(MUSL);
    expect(libcOfRoot(m)).toBe('musl');
    expect(libcVersion(m, 'musl')).toBe('1.2.4-r2');
    const g = tree(GLIBC);
    expect(libcOfRoot(g)).toBe('glibc');
    expect(libcVersion(g, 'glibc')).toBe('2.36');
    expect(libcOfRoot(tree({ 'pause': '' }))).toBe('unknown');
  });
  it('both loaders (a Debian node with the musl package; Alpine with gcompat): glibc, unless it is Alpine', () => {
    expect(libcOfRoot(tree({ ...GLIBC, ...MUSL }))).toBe('glibc');
    expect(libcOfRoot(tree({ ...GLIBC, ...MUSL, 'etc/alpine-release': '3.19.1\n' }))).toBe('musl');
  });
});

describe('the target\'s libc on a /proc tree', () => {
  /** A fake /proc: self is doctor's (musl image), then the given processes' roots. */
  function proc(procs: Record<string, string>, self: string): string {
    const p = tree({});
    for (const [pid, root] of Object.entries({ self, ...procs })) {
      mkdirSync(join(p, pid), { recursive: true });
      symlinkSync(root, join(p, pid, 'root'));
      if (pid !== 'self') writeFileSync(join(p, pid, 'comm'), `proc${pid}\n`);
    }
    return p;
  }
  it('auto: the other container\'s, not doctor\'s own (a musl image debugging a glibc workload)', () => {
    const own = tree(MUSL);
    const target = tree(GLIBC);
    const pause = tree({ pause: '' });
    const facts = targetLibc({ proc: proc({ '1': pause, '7': target, '12': target, '30': own }, own) });
    expect(facts).toEqual({ libc: 'glibc', version: '2.36', from: 'pid 7 (proc7)' });
  });
  it('several libcs visible (a node\'s processes): unknown, saying why and what to give', () => {
    const facts = targetLibc({ proc: proc({ '1': tree(GLIBC), '9': tree(MUSL) }, tree({})) });
    expect(facts.libc).toBe('unknown');
    expect(facts.from).toMatch(/^processes of several libcs are visible \(pid 1 \(proc1\) glibc, pid 9 \(proc9\) musl\): give --pid/);
  });
  it('nothing but doctor\'s own filesystem: unknown, never its own', () => {
    const own = tree(MUSL);
    expect(targetLibc({ proc: proc({ '5': own }, own) }).libc).toBe('unknown');
  });
  it.skipIf(!haveMusl)('a process\'s own program names its libc first; a static init (tini) names none, the next process does', async () => {
    const dynamic = await muslProgram([]);
    const stat = await muslProgram(['-static']);
    const image = tree(GLIBC); // a glibc-looking filesystem running a musl program
    const p = proc({ '1': image, '7': image }, tree({}));
    symlinkSync(stat, join(p, '1', 'exe'));
    symlinkSync(dynamic, join(p, '7', 'exe'));
    expect(targetLibc({ proc: p })).toMatchObject({ libc: 'musl', from: 'pid 7 (proc7)' });
    expect(targetLibc({ proc: p, pid: 7 }).libc).toBe('musl');
    expect(targetLibc({ proc: p, pid: 1 }).libc).toBe('glibc'); // static: the filesystem's loader decides
  });
  it('--pid and --libc', () => {
    const p = proc({ '44': tree(MUSL) }, tree(GLIBC));
    expect(targetLibc({ proc: p, pid: 44 })).toEqual({ libc: 'musl', version: '1.2.4-r2', from: 'pid 44 (proc44)' });
    expect(targetLibc({ proc: p, pid: 45 }).libc).toBe('unknown');
    expect(targetLibc({ proc: p, libc: 'glibc' })).toEqual({ libc: 'glibc', version: null, from: '--libc' });
  });
});

const root = process.getuid?.() === 0 && (await execa('unshare', ['--version'], { reject: false })).exitCode === 0;
if (!root && process.env.CI) throw new Error('the libc test needs root and unshare (util-linux)');
describe.skipIf(!root)('doctor in a container of another image', () => {
  it('chrooted into a musl-looking filesystem, sharing a PID namespace with a glibc process: --libc auto reports glibc', async () => {
    const project = fileURLToPath(new URL('../../', import.meta.url));
    const d = tree({ ...MUSL, 'tmp/.keep': '' });
    for (const dir of ['usr', 'proc', 'dev', 'app', 'lib/x86_64-linux-gnu']) mkdirSync(join(d, dir), { recursive: true });
    symlinkSync('usr/lib64', join(d, 'lib64'));
    symlinkSync('usr/bin', join(d, 'bin'));
    expect(libcOfRoot(d)).toBe('musl');
    const r = await startResponder();
    // A private mount and PID namespace: its own /proc shows only the glibc `sleep` (on the host's filesystem), the
    // shell, and doctor in the chroot, as a debug container shares only the target's processes.
    const script = [
      'set -e',
      'mount -t proc proc /proc',
      `mount --bind /usr ${d}/usr`,
      `mount --bind /usr/lib/x86_64-linux-gnu ${d}/lib/x86_64-linux-gnu`,
      `mount --bind /proc ${d}/proc`,
      `mount --bind /dev ${d}/dev`,
      `mount --bind ${project} ${d}/app`,
      'sleep 60 &',
      `printf 'nameserver 127.0.0.1\\noptions ndots:1 timeout:1\\n' | chroot ${d} /usr/bin/env NO_COLOR=1 ${process.execPath} /app/bin/k8sdiag.js doctor --json --resolv - -p ${r.udpPort} --budget 2`,
    ].join('\n');
    const res = await execa('unshare', ['--mount', '--pid', '--fork', 'sh', '-c', script], { reject: false, timeout: 60_000 });
    const doc = JSON.parse(String(res.stdout)) as { context: { workloadLibc: { libc: string; from: string } } };
    expect(doc.context.workloadLibc.libc, String(res.stderr)).toBe('glibc');
    expect(doc.context.workloadLibc.from).toMatch(/^pid \d+ \((sh|sleep)\)/);
  }, 90_000);
});
