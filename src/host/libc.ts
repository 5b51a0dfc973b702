/**
 * The libc of the workload doctor diagnoses, read from its filesystem, never doctor's own: in `kubectl debug
 * --target=CONTAINER` the debug container shares the target's process namespace, and /proc/<pid>/root of the
 * target's processes is the target's filesystem. The DNS behaviour follows the libc: glibc sends A and AAAA from one
 * socket and has single-request-reopen; musl sends both at once to every nameserver, reads resolv.conf its own way,
 * and retries truncated answers over TCP only from 1.2.4.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { elfInterpreter } from './elf.js';

export type Libc = 'glibc' | 'musl' | 'unknown';

export interface LibcFacts {
  libc: Libc;
  /** The version, where the filesystem says it (glibc's libc.so.6, Alpine's package database). */
  version: string | null;
  /** Where it was read: "--libc", "pid 4242 (nginx)", or why it could not be. */
  from: string;
}

/**
 * Which libc a root filesystem carries, by its dynamic loader. A root with both (a Debian node with the musl package,
 * an Alpine image with gcompat) is Alpine's musl where /etc/alpine-release says so, glibc otherwise.
 */
export function libcOfRoot(root: string): Libc {
  const r = root.endsWith('/') ? root : `${root}/`;
  let musl = false;
  for (const dir of ['lib', 'lib64', 'usr/lib']) {
    let names: string[] = [];
    try {
      names = readdirSync(`${r}${dir}`);
    } catch {
      continue;
    }
    if (names.some((n) => n.startsWith('ld-musl-'))) musl = true;
  }
  const glibc = ['lib64/ld-linux-x86-64.so.2', 'lib/ld-linux-aarch64.so.1', 'lib/x86_64-linux-gnu/libc.so.6', 'lib/aarch64-linux-gnu/libc.so.6', 'lib64/libc.so.6', 'usr/lib64/libc.so.6'].some((p) => existsSync(`${r}${p}`));
  if (musl && glibc) return existsSync(`${r}etc/alpine-release`) ? 'musl' : 'glibc';
  return musl ? 'musl' : glibc ? 'glibc' : 'unknown';
}

/** The libc a loader path names: musl's (or gcompat's, which runs glibc programs on musl) or glibc's. */
export function libcOfLoader(path: string): Libc {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (/^ld-musl-|musl|gcompat/.test(name)) return 'musl';
  if (/^ld-linux|^ld64\.so|^ld-\d/.test(name)) return 'glibc';
  return 'unknown';
}

/** `path` inside `root` with its symlinks followed there (at most 8), as the target's own loader would see it. */
function resolveIn(root: string, path: string): string {
  let p = path;
  for (let hop = 0; hop < 8; hop++) {
    let target: string;
    try {
      target = readlinkSync(`${root}${p.replace(/^\/+/, '')}`);
    } catch {
      return p;
    }
    p = target.startsWith('/') ? target : `${p.slice(0, p.lastIndexOf('/') + 1)}${target}`;
  }
  return p;
}

/**
 * The libc a process's own program asked for: the loader in its executable's ELF header, read through
 * /proc/<pid>/exe and followed inside the process's root. Unknown for a static program or an unreadable one.
 */
export function libcOfProcess(proc: string, pid: string): Libc {
  const exe = head(`${proc}/${pid}/exe`, 64 << 10);
  const interp = exe === undefined ? undefined : elfInterpreter(exe);
  if (interp === undefined || interp === null) return 'unknown';
  const byName = libcOfLoader(resolveIn(`${proc}/${pid}/root/`, interp));
  return byName !== 'unknown' ? byName : libcOfLoader(interp);
}

/** The first `max` bytes of a file, or undefined. */
function head(path: string, max: number): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(max);
    const n = readSync(fd, buf, 0, max, 0);
    return buf.subarray(0, n);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The libc's version where the filesystem says it: glibc's banner in libc.so.6, musl's entry in apk's database. */
export function libcVersion(root: string, libc: Libc): string | null {
  const r = root.endsWith('/') ? root : `${root}/`;
  if (libc === 'musl') {
    const db = head(`${r}lib/apk/db/installed`, 16 << 20)?.toString('latin1');
    const m = db === undefined ? null : /^P:musl\nV:([^\n]+)/m.exec(db);
    return m?.[1] ?? null;
  }
  if (libc === 'glibc') {
    for (const p of ['lib/x86_64-linux-gnu/libc.so.6', 'lib/aarch64-linux-gnu/libc.so.6', 'lib64/libc.so.6', 'usr/lib64/libc.so.6']) {
      const bin = head(`${r}${p}`, 8 << 20);
      if (bin === undefined) continue;
      const m = /GNU C Library [^\n\0]*?version (\d+\.\d+(?:\.\d+)?)/.exec(bin.toString('latin1'));
      if (m) return m[1]!;
    }
  }
  return null;
}

/** A filesystem root's identity: device and inode of its top directory. */
function rootId(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

function comm(proc: string, pid: string): string {
  try {
    return readFileSync(`${proc}/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * The target's libc: `--libc glibc|musl` as given; `--pid N`, that process's filesystem; otherwise (auto) the
 * filesystems of the processes doctor can see that are not its own. One libc among them is the target's; several
 * (a node's processes, with hostPID) or none (no other container visible) leave it unknown, and it says why.
 */
export function targetLibc(opts: { libc?: 'glibc' | 'musl' | 'auto'; pid?: number; proc?: string } = {}): LibcFacts {
  const proc = opts.proc ?? '/proc';
  if (opts.libc === 'glibc' || opts.libc === 'musl') return { libc: opts.libc, version: null, from: '--libc' };
  if (opts.pid !== undefined) {
    const root = `${proc}/${opts.pid}/root/`;
    if (rootId(root) === undefined) return { libc: 'unknown', version: null, from: `pid ${opts.pid}: its filesystem is not readable here (no such process, or no permission: kubectl debug --target shares it)` };
    const own = libcOfProcess(proc, String(opts.pid));
    const libc = own !== 'unknown' ? own : libcOfRoot(root);
    return { libc, version: libcVersion(root, libc), from: `pid ${opts.pid} (${comm(proc, String(opts.pid))})` };
  }
  const own = rootId(`${proc}/self/root/`);
  // Per filesystem, the libc of the first process whose program names one (a static init such as tini names none);
  // where none does, the filesystem's loaders.
  const byRoot = new Map<string, { pid: string; libc: Libc; fromProgram: boolean }>();
  let pids: string[] = [];
  try {
    pids = readdirSync(proc).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
  } catch {
    return { libc: 'unknown', version: null, from: `${proc} is not readable` };
  }
  for (const pid of pids) {
    const id = rootId(`${proc}/${pid}/root/`);
    if (id === undefined || id === own || byRoot.get(id)?.fromProgram === true) continue;
    const program = libcOfProcess(proc, pid);
    if (program !== 'unknown') byRoot.set(id, { pid, libc: program, fromProgram: true });
    else if (!byRoot.has(id)) byRoot.set(id, { pid, libc: libcOfRoot(`${proc}/${pid}/root/`), fromProgram: false });
  }
  // A filesystem with no libc (the pause container, a static binary's) says nothing about the workload's lookups.
  const known = [...byRoot.values()].filter((r) => r.libc !== 'unknown');
  const kinds = new Set(known.map((r) => r.libc));
  const first = known[0];
  if (first !== undefined && kinds.size === 1) {
    const root = `${proc}/${first.pid}/root/`;
    const others = known.length > 1 ? ` and ${known.length - 1} other filesystem(s) like it` : '';
    return { libc: first.libc, version: libcVersion(root, first.libc), from: `pid ${first.pid} (${comm(proc, first.pid)})${others}` };
  }
  if (kinds.size > 1) {
    const seen = known.slice(0, 4).map((r) => `pid ${r.pid} (${comm(proc, r.pid)}) ${r.libc}`).join(', ');
    return { libc: 'unknown', version: null, from: `processes of several libcs are visible (${seen}${known.length > 4 ? ', ...' : ''}): give --pid of the workload, or --libc` };
  }
  return {
    libc: 'unknown',
    version: null,
    from: "no other container's processes are visible, and doctor's own filesystem is not the workload's: run it with kubectl debug --target=CONTAINER, or give --libc",
  };
}
