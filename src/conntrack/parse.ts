/**
 * Parsers for everything a user may paste or pipe about conntrack, detected
 * from the text itself (never from a file name), in any mix:
 *
 * - `conntrack -S` (netlink): `cpu=N<TAB>key=value ...`, with whatever keys
 *   the kernel sent; conntrack-tools' /proc fallback in either of its shapes
 *   (`cpu=N entries=... clashres=...` or one `key<TAB><TAB>value` per line).
 * - `/proc/net/stat/nf_conntrack`: a header naming the columns, then one row
 *   of 8-digit hex counters per CPU (`entries` is global and repeats).
 * - sysctl output: `net.netfilter.nf_conntrack_max = 262144`, legacy
 *   `net.ipv4.netfilter.ip_conntrack_*`.
 * - kernel log lines saying the table is full.
 *
 * Counter names are normalised to the netlink names of current kernels:
 * /proc's `clashres` is `clash_resolve`, `icmp_error` is `error` and
 * `chainlength` (5.15+) is `chaintoolong`.
 */
import { InputError } from '../errors.js';
import { looksBinary, printable } from '../text.js';
import type { CounterRecord } from '../stats/index.js';

export type StatsKind = 'conntrack-S' | 'proc-stat' | 'conntrack-S-fallback';

export interface StatsSource {
  kind: StatsKind;
  /** Counter names as the input spelled them, in order. */
  rawKeys: string[];
  /** One record per CPU row, normalised names; `entries` left out. */
  perCpu: CounterRecord[];
  /** Sum over CPUs, normalised names. */
  totals: CounterRecord;
  /** Table entries (global), where the input had them. */
  entries?: number;
  /** Which kernel generation the counter set points to. */
  generation: string;
}

/** Table-full lines kept at each end of the log: the first and the last this many. */
export const KEPT_LOG_LINES = 3;

export interface KernelLog {
  /** How many lines said the table was full. */
  tableFullLines: number;
  /**
   * Those lines, summarised: the first and the last KEPT_LOG_LINES each (a full table logs a line per dropped packet,
   * up to hundreds of thousands; the count says how many).
   */
  tableFull: string[];
  /** Network namespaces (inode numbers) named by those lines. */
  netns: string[];
  /** "N callbacks suppressed" lines from the rate limiter next to them. */
  suppressed: number;
  /** Kernel timestamp (seconds since boot) of the newest such line, where dmesg printed one. */
  lastAtSeconds?: number;
  /** Wall-clock time of the newest such line, where the line carried a date (syslog, journalctl, dmesg -T). */
  lastDate?: string;
  /** Seconds between that line and the moment of reading (live: /proc/uptime; piped: its date). */
  ageSeconds?: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ISO_DATE = /\b(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)/;
const DMESG_T = /\[(?:[A-Z][a-z]{2} )?([A-Z][a-z]{2})\s+(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})\]/;
const SYSLOG_DATE = /^([A-Z][a-z]{2})\s+(\d{1,2}) (\d\d):(\d\d):(\d\d)\s/;

/**
 * The wall-clock date a log line carries, if any: ISO 8601 (journalctl -o
 * short-iso, RFC 5424 syslog), dmesg -T's `[Tue Mar  3 04:12:55 2026]`, or
 * classic syslog's `Mar  3 04:12:55` (local time; its year is the latest one
 * that does not put the line in the future of `now`).
 */
export function lineDate(line: string, now: Date): Date | undefined {
  const iso = ISO_DATE.exec(line);
  if (iso?.[1] !== undefined) {
    let t = iso[1].replace(' ', 'T').replace(',', '.');
    if (/[+-]\d{4}$/.test(t)) t = `${t.slice(0, -2)}:${t.slice(-2)}`;
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  const dt = DMESG_T.exec(line);
  if (dt) {
    const m = MONTHS.indexOf(dt[1] ?? '');
    if (m < 0) return undefined;
    return new Date(Number(dt[6]), m, Number(dt[2]), Number(dt[3]), Number(dt[4]), Number(dt[5]));
  }
  const sl = SYSLOG_DATE.exec(line);
  if (sl) {
    const m = MONTHS.indexOf(sl[1] ?? '');
    if (m < 0) return undefined;
    let d = new Date(now.getFullYear(), m, Number(sl[2]), Number(sl[3]), Number(sl[4]), Number(sl[5]));
    if (d.getTime() > now.getTime() + 86_400_000) d = new Date(now.getFullYear() - 1, m, Number(sl[2]), Number(sl[3]), Number(sl[4]), Number(sl[5]));
    return d;
  }
  return undefined;
}

export interface ConntrackInput {
  stats: StatsSource[];
  /** Normalised sysctl names (nf_conntrack_max, ...) to values. */
  sysctl: Record<string, number>;
  kernelLog: KernelLog;
  /** conntrack-tools' own error lines, e.g. missing CAP_NET_ADMIN. */
  toolErrors: string[];
  /** Lines that are none of the above (ignored). */
  unrecognised: number;
  warnings: string[];
}

const U32_MAX = 0xffffffff;

const ALIASES: Record<string, string> = {
  clashres: 'clash_resolve',
  icmp_error: 'error',
  chainlength: 'chaintoolong',
};

/** Every counter name any kernel generation has printed. */
const KNOWN_KEYS = new Set([
  'entries',
  'searched',
  'found',
  'new',
  'invalid',
  'ignore',
  'delete',
  'delete_list',
  'insert',
  'insert_failed',
  'drop',
  'early_drop',
  'error',
  'icmp_error',
  'expect_new',
  'expect_create',
  'expect_delete',
  'search_restart',
  'clash_resolve',
  'clashres',
  'chaintoolong',
  'chainlength',
]);

function normalise(key: string): string {
  return ALIASES[key] ?? key;
}

/** Infer the kernel generation from the counter names a source printed. */
export function generationOf(kind: StatsKind, keys: readonly string[]): string {
  const has = (k: string): boolean => keys.includes(k);
  if (kind === 'proc-stat' || (kind === 'conntrack-S-fallback' && has('entries') && (has('clashres') || has('searched')))) {
    if (has('clashres') && has('chainlength')) return 'Linux 5.15 or newer (clashres, chainlength columns)';
    if (has('clashres')) return 'Linux 5.10 to 5.14 (clashres column)';
    if (has('search_restart')) return 'Linux 3.x to 5.9 (searched, search_restart columns)';
    return 'Linux 2.6 (16 columns, no search_restart)';
  }
  if (has('chaintoolong')) return 'Linux 5.15 or newer (chaintoolong counter)';
  if (has('clash_resolve')) return 'Linux 5.10 to 5.14 (clash_resolve counter)';
  if (has('searched') || has('delete_list')) return 'Linux older than 4.10 (searched, delete_list counters)';
  return 'Linux 4.10 to 5.9 (no clash_resolve counter; or conntrack-tools older than 1.4.7, which does not print it)';
}

function parseCount(raw: string, radix: 10 | 16, what: string, lineNo: number): number {
  const re = radix === 16 ? /^[0-9a-fA-F]+$/ : /^\d+$/;
  if (raw.startsWith('-')) throw new InputError(`line ${lineNo}: ${what} is negative (${raw}); kernel counters are unsigned`);
  if (!re.test(raw)) throw new InputError(`line ${lineNo}: ${what} is not a ${radix === 16 ? 'hex ' : ''}number: "${raw.slice(0, 40)}"`);
  const n = Number.parseInt(raw, radix);
  if (!Number.isSafeInteger(n) || n > U32_MAX) {
    throw new InputError(`line ${lineNo}: ${what} = ${raw} is out of range for a 32-bit kernel counter`);
  }
  return n;
}

function finishSource(kind: StatsKind, rawKeys: string[], rows: CounterRecord[], entries: number | undefined): StatsSource {
  const totals: CounterRecord = {};
  for (const row of rows) for (const [k, v] of Object.entries(row)) totals[k] = (totals[k] ?? 0) + v;
  const src: StatsSource = { kind, rawKeys, perCpu: rows, totals, generation: generationOf(kind, rawKeys) };
  if (entries !== undefined) src.entries = entries;
  return src;
}

const CPU_LINE = /^cpu=(\d+)\s+(.*)$/;
const KV = /^([a-z_]+)=(\S*)$/;
const VERTICAL = /^([a-z_]+)\s+(\S+)\s*$/;
const HEX_ROW = /^[0-9a-fA-F]{8}(\s+[0-9a-fA-F]{8})*\s*$/;
const SYSCTL = /^(net\.[A-Za-z0-9_.]+|\/proc\/sys\/net\/[A-Za-z0-9_/]+)\s*[=:]\s*(\S*)\s*$/;
const TABLE_FULL = /(?:(?:nf|ip)_conntrack: )?table full(?: in netns (\d+))?, dropping packet/;
const SUPPRESSED = /(nf_conntrack|net_ratelimit): (\d+) callbacks suppressed/;
const DMESG_TS = /\[\s*(\d+\.\d+)\]/;
const TOOL_ERROR = /^conntrack v[\d.]+ \(conntrack-tools\): (.*)$/;

/** Map sysctl names of every generation onto the current nf_conntrack_* names. */
export function normaliseSysctl(name: string): string | undefined {
  const base = name.replace(/^\/proc\/sys\//, '').replace(/\//g, '.');
  const leaf = base.slice(base.lastIndexOf('.') + 1);
  if (!/^(nf|ip)_conntrack_/.test(leaf)) return undefined;
  return leaf.replace(/^ip_conntrack_/, 'nf_conntrack_');
}

export const EXPECTED_INPUT =
  'expected `conntrack -S` output, /proc/net/stat/nf_conntrack, sysctl lines (net.netfilter.nf_conntrack_max = N) or kernel log lines';

export function parseConntrackInput(text: string, now: Date = new Date()): ConntrackInput {
  if (text.trim() === '') throw new InputError(`empty input: ${EXPECTED_INPUT}`);
  if (looksBinary(text)) throw new InputError(`binary data on input: ${EXPECTED_INPUT}`);

  /** The last table-full lines, beyond the first KEPT_LOG_LINES. */
  const lastFull: string[] = [];
  /** A net_ratelimit count waiting for the next line: conntrack's if that line says the table was full. */
  let pendingNetRatelimit = 0;
  let sawSuppressed = false;
  const out: ConntrackInput = {
    stats: [],
    sysctl: {},
    kernelLog: { tableFullLines: 0, tableFull: [], netns: [], suppressed: 0 },
    toolErrors: [],
    unrecognised: 0,
    warnings: [],
  };
  const lines = text.split(/\r?\n/);

  // Stateful groups: consecutive cpu= lines, a /proc header with its rows,
  // consecutive vertical key/value lines.
  let cpuGroup: { keys: string[]; rows: CounterRecord[]; cpus: Set<string>; entries?: number; fallback: boolean } | undefined;
  let procGroup: { header: string[]; rows: CounterRecord[]; entries?: number } | undefined;
  let vertical: { keys: string[]; row: CounterRecord; entries?: number } | undefined;

  const flush = (): void => {
    if (cpuGroup) {
      out.stats.push(finishSource(cpuGroup.fallback ? 'conntrack-S-fallback' : 'conntrack-S', cpuGroup.keys, cpuGroup.rows, cpuGroup.entries));
      cpuGroup = undefined;
    }
    if (procGroup) {
      if (procGroup.rows.length === 0) out.warnings.push('a /proc/net/stat/nf_conntrack header without rows was ignored');
      else out.stats.push(finishSource('proc-stat', procGroup.header, procGroup.rows, procGroup.entries));
      procGroup = undefined;
    }
    if (vertical) {
      if (vertical.keys.length >= 3) out.stats.push(finishSource('conntrack-S-fallback', vertical.keys, [vertical.row], vertical.entries));
      else out.unrecognised += vertical.keys.length;
      vertical = undefined;
    }
  };

  lines.forEach((rawLine, i) => {
    const lineNo = i + 1;
    const line = rawLine.trim();
    if (line === '') return;

    // 1. conntrack -S per-CPU line.
    const cpu = CPU_LINE.exec(line);
    if (cpu) {
      if (procGroup || vertical) flush();
      const row: CounterRecord = {};
      const keys: string[] = [];
      let entries: number | undefined;
      for (const pair of (cpu[2] ?? '').split(/\s+/)) {
        if (pair === '') continue;
        const kv = KV.exec(pair);
        if (!kv || kv[1] === undefined || kv[2] === undefined) {
          throw new InputError(`line ${lineNo}: "${printable(pair, 40)}" is not key=value in a conntrack -S line`);
        }
        const value = parseCount(kv[2], 10, kv[1], lineNo);
        keys.push(kv[1]);
        if (kv[1] === 'entries') entries = value;
        else row[normalise(kv[1])] = value;
      }
      if (keys.length === 0) throw new InputError(`line ${lineNo}: cpu=${cpu[1]} has no counters`);
      // A CPU seen again starts another snapshot (`conntrack -S; sleep 10; conntrack -S`): never summed with the first.
      if (cpuGroup && (cpuGroup.keys.join(' ') !== keys.join(' ') || cpuGroup.cpus.has(cpu[1] ?? ''))) flush();
      if (!cpuGroup) {
        cpuGroup = { keys, rows: [], cpus: new Set(), fallback: keys.includes('entries') };
        if (entries !== undefined) cpuGroup.entries = entries;
      }
      cpuGroup.rows.push(row);
      cpuGroup.cpus.add(cpu[1] ?? '');
      return;
    }

    // 2. /proc/net/stat/nf_conntrack header and rows.
    const words = line.split(/\s+/);
    if (words[0] === 'entries' && words.length >= 8 && words.every((w) => KNOWN_KEYS.has(w))) {
      flush();
      procGroup = { header: words, rows: [] };
      return;
    }
    if (procGroup && HEX_ROW.test(line)) {
      if (words.length !== procGroup.header.length) {
        throw new InputError(
          `line ${lineNo}: ${words.length} columns under a header of ${procGroup.header.length}: not /proc/net/stat/nf_conntrack`,
        );
      }
      const row: CounterRecord = {};
      procGroup.header.forEach((name, col) => {
        const value = parseCount(words[col] ?? '', 16, name, lineNo);
        if (name === 'entries') procGroup!.entries ??= value;
        else row[normalise(name)] = value;
      });
      procGroup.rows.push(row);
      return;
    }
    if (HEX_ROW.test(line) && words.length >= 8) {
      throw new InputError(`line ${lineNo}: hex counters without the /proc/net/stat/nf_conntrack header line; include the header`);
    }

    // 3. conntrack-tools' vertical /proc fallback: "insert_failed\t\t0".
    const vert = VERTICAL.exec(line);
    if (vert && vert[1] !== undefined && vert[2] !== undefined && KNOWN_KEYS.has(vert[1])) {
      if (cpuGroup || procGroup || vertical?.keys.includes(vert[1])) flush();
      vertical ??= { keys: [], row: {} };
      const value = parseCount(vert[2], 10, vert[1], lineNo);
      vertical.keys.push(vert[1]);
      if (vert[1] === 'entries') vertical.entries = value;
      else vertical.row[normalise(vert[1])] = value;
      return;
    }

    flush();

    // 4. sysctl.
    const sys = SYSCTL.exec(line);
    if (sys && sys[1] !== undefined && sys[2] !== undefined) {
      const name = normaliseSysctl(sys[1]);
      if (name === undefined) return; // another sysctl: recognised, not ours
      if (sys[2] === '') return;
      out.sysctl[name] = parseCount(sys[2], 10, sys[1], lineNo);
      return;
    }

    // 5. kernel log.
    const full = TABLE_FULL.exec(line);
    // net_ratelimit suppresses every kind of network message: its count is conntrack's only when a table-full line
    // comes right after it.
    if (pendingNetRatelimit > 0) {
      if (full) out.kernelLog.suppressed += pendingNetRatelimit;
      pendingNetRatelimit = 0;
    }
    if (full) {
      out.kernelLog.tableFullLines++;
      if (out.kernelLog.tableFull.length < KEPT_LOG_LINES) out.kernelLog.tableFull.push(line);
      else {
        lastFull.push(line);
        if (lastFull.length > KEPT_LOG_LINES) lastFull.shift();
      }
      const date = lineDate(line, now);
      if (date !== undefined && (out.kernelLog.lastDate === undefined || date.toISOString() > out.kernelLog.lastDate)) {
        out.kernelLog.lastDate = date.toISOString();
        out.kernelLog.ageSeconds = Math.max(0, (now.getTime() - date.getTime()) / 1000);
      }
      const ts = DMESG_TS.exec(line);
      if (ts && ts[1] !== undefined) {
        const at = Number.parseFloat(ts[1]);
        out.kernelLog.lastAtSeconds = Math.max(out.kernelLog.lastAtSeconds ?? 0, at);
      }
      if (full[1] !== undefined && !out.kernelLog.netns.includes(full[1])) out.kernelLog.netns.push(full[1]);
      return;
    }
    const supp = SUPPRESSED.exec(line);
    if (supp && supp[1] !== undefined && supp[2] !== undefined) {
      sawSuppressed = true;
      if (supp[1] === 'nf_conntrack') out.kernelLog.suppressed += Number.parseInt(supp[2], 10);
      else pendingNetRatelimit = Number.parseInt(supp[2], 10);
      return;
    }

    // 6. conntrack-tools' own errors.
    const tool = TOOL_ERROR.exec(line);
    if (tool && tool[1] !== undefined) {
      out.toolErrors.push(tool[1]);
      return;
    }
    out.unrecognised++;
  });
  flush();
  out.kernelLog.tableFull.push(...lastFull);

  const recognised =
    out.stats.length + Object.keys(out.sysctl).length + out.kernelLog.tableFullLines + out.kernelLog.suppressed + out.toolErrors.length + (sawSuppressed ? 1 : 0);
  if (recognised === 0) {
    const sysctlOnly = lines.some((l) => SYSCTL.test(l.trim()));
    throw new InputError(sysctlOnly ? `sysctl lines without any nf_conntrack_* value: ${EXPECTED_INPUT}` : `nothing recognisable in the input: ${EXPECTED_INPUT}`);
  }
  if (out.unrecognised > 0) out.warnings.push(`${out.unrecognised} line${out.unrecognised === 1 ? '' : 's'} not recognised and ignored`);
  return out;
}
