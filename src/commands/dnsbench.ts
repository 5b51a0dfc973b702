/**
 * `k8sdiag dnsbench`: flags -> a checked input (servers, names, resolver
 * options) -> the engine or the resolver emulation -> a typed result with
 * findings. Nothing here prints.
 */
import { isIP } from 'node:net';
import type { RecordType } from 'dns-packet';
import { runEngine } from '../engine/engine.js';
import { QueryList } from '../engine/queries.js';
import { formatHostPort } from '../dns/wire.js';
import type { EngineOptions, EngineResult, QuerySpec, QueryStats } from '../engine/engine.js';
import type { LocalDrops } from '../host/drops.js';
import type { LookupStats, ResolverEmulationOptions } from '../engine/resolver.js';
import { InputError, UsageError, UserError } from '../errors.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import type { Finding } from '../findings.js';
import { sortFindings } from '../findings.js';
import { parseType } from '../dns/wire.js';
import { LIMITS, loadResolvConf, readTextFile } from '../input.js';
import type { Source } from '../input.js';
import { checkName } from '../resolv/expand.js';
import { lookupsDisabled } from '../resolv/findings.js';
import { parseResolvConf } from '../resolv/parse.js';
import type { Libc, ResolvConf } from '../resolv/parse.js';
import { rate, recordTotal } from '../stats/index.js';
import type { HistogramSnapshot, PercentileSummary } from '../stats/index.js';
import { findingsFor } from './dnsbench-findings.js';

/** The engine's options; with `resolver`, the same budget drives lookups instead of queries. */
export interface DnsbenchInput extends Omit<EngineOptions, 'tcpRetry' | 'progressEveryMs'> {
  tcpRetry: boolean;
  /** Resolver emulation (--resolv): each unit is a lookup as a libc does it. */
  resolver?: Omit<ResolverEmulationOptions, 'names' | 'concurrency' | 'total' | 'durationMs' | 'qps' | 'slowMs' | 'signal' | 'onSlow' | 'onProgress'>;
  /** Warnings met while building the input (resolv.conf parse warnings). */
  warnings?: string[];
}

/** The per-query counters of the engine (sent, answered, timeouts, slow, errors, rcodes, late, ...). */
export interface DnsbenchResult extends QueryStats, ResultHeader {
  command: 'dnsbench';
  mode: 'queries' | 'lookups';
  server: string;
  port: number;
  /** Every nameserver queried, as host:port ([v6]:port). */
  servers: string[];
  concurrency: number;
  qpsLimit: number | null;
  timeoutMs: number;
  slowMs: number;
  /** Per-query latency; null when nothing was answered. */
  latencyMs: PercentileSummary | null;
  /** Answered queries per second over the whole run (durationMs), the wait for the last timeouts included. */
  qps: number;
  /**
   * Answered queries per second from the start to the last answer: the rate while the server was answering,
   * without the wait for timeouts at the end. dnsperf's "Queries per second" is this kind of rate (it gives up
   * on what is in flight when its time is up). null with no answer.
   */
  qpsToLastAnswer: number | null;
  durationMs: number;
  /** Answered queries that took 1 s / 5 s / 10 s or more (exact): where resolver retries land. */
  stalls: { over1s: number; over5s: number; over10s: number };
  /** The latency histogram, microseconds, mergeable across runs and nodes. */
  histogram: HistogramSnapshot;
  interrupted: boolean;
  /**
   * Distinct UDP source ports the queries were spread over. Through a Service IP each is
   * pinned by conntrack to one endpoint; the run holds at most this many conntrack entries
   * (plus one per TCP retry).
   */
  sourcePorts: number;
  /** Replies dropped by this machine before k8sdiag read them (full receive buffers). */
  localDrops: LocalDrops;
  /** Resolver mode (--resolv): lookups done, what the application feels. Null otherwise. */
  lookups: number | null;
  lookupLatencyMs: PercentileSummary | null;
  /** Lookups slower than 1 s, 5 s, and the resolver's own timeout (the retry signature). */
  lookupStalls: { over1s: number; over5s: number; overTimeout: number } | null;
  /** Resolver mode details: libc, outcomes, glibc's mode switches, the lookup histogram. */
  resolver: (Omit<LookupStats, 'lookups' | 'lookupLatencyMs' | 'stalls' | 'overTimeout'> & { lookupsPerSecond: number }) | null;
  warnings: string[];
  findings: Finding[];
}

/**
 * Read a --queries file: `name [TYPE]` per line; # comments and blank lines skipped. Line by line into a packed
 * QueryList: the file's size in packets and index, whatever its number of lines.
 */
export function parseQueriesFile(text: string, defaultType: RecordType): QueryList {
  const out = new QueryList(1024);
  const shown = (v: string): string => JSON.stringify(v.slice(0, 60)).slice(1, -1);
  for (let from = 0, i = 0; from < text.length; i++) {
    let eol = text.indexOf('\n', from);
    if (eol < 0) eol = text.length;
    const line = text.slice(from, eol).trim();
    from = eol + 1;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const [name = '', typeRaw, extra] = line.split(/\s+/);
    if (extra !== undefined) throw new UserError(`queries file line ${i + 1}: expected "name [TYPE]", got "${shown(line)}"`);
    let type = defaultType;
    if (typeRaw !== undefined) {
      const t = parseType(typeRaw);
      if (t === undefined) throw new UserError(`queries file line ${i + 1}: unknown record type "${shown(typeRaw)}"`);
      type = t;
    }
    // Names are checked one way, as for -d.
    try {
      checkName(name);
    } catch (err) {
      throw new UserError(`queries file line ${i + 1}: ${(err as Error).message}`);
    }
    out.add(name, type);
  }
  if (out.count === 0) throw new UserError('the queries file has no queries', 'one "name [TYPE]" per line');
  return out;
}

/** The flags of `k8sdiag dnsbench`, with where the defaulted ones came from. */
export interface DnsbenchFlags {
  concurrency: number;
  number?: number | undefined;
  duration?: number | undefined;
  qps?: number | undefined;
  domain?: string[] | undefined;
  queries?: string | undefined;
  type: string;
  slow: number;
  timeout: number;
  server?: string | undefined;
  port: number;
  tcp?: boolean | undefined;
  /** Resolver mode: true for /etc/resolv.conf, a path ("-": stdin), or any Source (text handed over by doctor). */
  resolv?: string | boolean | Source | undefined;
  libc: Libc;
  singleRequest?: boolean | undefined;
  singleRequestReopen?: boolean | undefined;
  longLived?: boolean | undefined;
  sockets?: number | undefined;
  /** Flags the user gave on the command line (not defaults): e.g. 'timeout', 'libc'. */
  given: ReadonlySet<string>;
}

/**
 * A --server value: an IP address, `[v6]`, or `[v6]:port`/`v4:port` (the port
 * then wins over -p); a link-local address keeps its %zone.
 */
export function parseServer(raw: string, flag = '--server'): { host: string; port?: number } {
  const s = raw.trim();
  if (s === '') throw new UsageError(`${flag} needs an address: an IP, [v6]:port, v4:port or a host name`);
  let host = s;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(s);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (v4port) {
    host = v4port[1]!;
    port = Number(v4port[2]);
  }
  const shown = JSON.stringify(raw).slice(1, -1);
  if (port !== undefined && (port < 1 || port > 65535)) throw new UsageError(`${flag} ${shown}: port must be from 1 to 65535`);
  // Shaped like an address but not one (127.0.0.300, 10.96.0, fd00::zz: digits and dots, or a colon, which no host
  // name has): a typo, never a host name to look up.
  const bare = host.replace(/%.*$/, '');
  if (isIP(bare) === 0 && (/^[\d.]+$/.test(bare) || bare.includes(":") || bracket !== null)) {
    throw new UsageError(`${flag} ${shown}: not a valid IP address`, 'an IPv4 or IPv6 address, v4:port, [v6]:port, or a host name');
  }
  return port === undefined ? { host } : { host, port };
}

/** Resolve a server host given by name (the only lookup this tool makes through the system resolver). */
async function toAddress(host: string): Promise<string> {
  if (isIP(host)) return host;
  const { lookup } = await import('node:dns/promises');
  try {
    return (await lookup(host)).address;
  } catch {
    throw new UsageError(`cannot resolve --server ${host}`, 'give an IP address');
  }
}

/**
 * Check the flags and build the run: names, servers (--server, else the
 * resolv.conf being emulated, else /etc/resolv.conf), resolver options. Flags
 * that mean nothing in the chosen mode are refused, not ignored.
 */
export async function prepareDnsbench(f: DnsbenchFlags): Promise<DnsbenchInput> {
  const type = parseType(f.type);
  if (type === undefined) throw new UsageError(`unknown record type "${f.type}": give a name (AAAA), a number (65) or TYPE65`);
  if (f.domain && f.queries) throw new UsageError('give names with -d or with --queries, not both');
  const resolverMode = f.resolv !== undefined && f.resolv !== false;
  const resolvSource: Source | undefined = !resolverMode
    ? undefined
    : typeof f.resolv === 'object'
      ? f.resolv
      : { kind: 'file', path: typeof f.resolv === 'string' ? f.resolv : '/etc/resolv.conf' };
  if (!resolverMode) {
    for (const flag of ['singleRequest', 'singleRequestReopen', 'longLived', 'libc'] as const) {
      if (f.given.has(flag)) throw new UsageError(`--${kebab(flag)} needs --resolv (it shapes the emulated resolver)`);
    }
  } else {
    if (f.tcp) throw new UsageError('--tcp means nothing with --resolv: truncated replies are retried over TCP as the libc does', 'options use-vc in the resolv.conf sends every lookup over TCP');
    if (f.given.has('sockets')) throw new UsageError('--sockets means nothing with --resolv: the emulated libc opens its own sockets per lookup');
    if (f.libc === 'musl') {
      for (const flag of ['singleRequest', 'singleRequestReopen', 'longLived'] as const) {
        if (f.given.has(flag)) throw new UsageError(`--${kebab(flag)} is a glibc option; musl has no such mode`, 'for musl, NodeLocalDNS or TCP (options use-vc is ignored by musl) are the remedies');
      }
    }
  }
  let queries: QueryList | QuerySpec[];
  if (f.queries !== undefined) queries = parseQueriesFile(await readTextFile(f.queries, LIMITS.queries), type);
  else {
    queries = (f.domain ?? ['google.com']).map((name) => ({ name, type }));
    for (const q of queries) checkName(q.name);
  }

  const warnings: string[] = [];
  let conf: ResolvConf | undefined;
  if (resolvSource !== undefined) {
    const loaded = await loadResolvConf(resolvSource);
    conf = parseResolvConf(loaded.text, { libc: f.libc, env: { LOCALDOMAIN: process.env.LOCALDOMAIN, RES_OPTIONS: process.env.RES_OPTIONS } });
    warnings.push(...conf.warnings.map((w) => `${loaded.origin}: ${w}`));
    const disabled = lookupsDisabled(conf);
    if (disabled !== undefined && conf.libc === 'musl' && disabled.option === 'attempts:0') {
      throw new InputError(`${loaded.origin}: options attempts:0: ${disabled.why}; there is no lookup to emulate`, 'remove the option, or give --libc glibc');
    }
    if (disabled !== undefined) warnings.push(`${loaded.origin}: options ${disabled.option}: ${disabled.why}`);
  }
  let servers: Array<{ host: string; port: number }>;
  if (f.server !== undefined) {
    const s = parseServer(f.server);
    servers = [{ host: await toAddress(s.host), port: s.port ?? f.port }];
  } else {
    const c = conf ?? parseResolvConf(await readTextFile('/etc/resolv.conf', LIMITS.resolv).catch(() => ''), { libc: f.libc });
    servers = [];
    for (const ns of c.nameservers) servers.push({ host: await toAddress(ns), port: f.port });
  }
  if (servers.length === 0) throw new UserError('no nameservers to send to', 'give --server, or a resolv.conf with a nameserver line');
  const first = servers[0]!;
  const number = f.number ?? (f.duration === undefined ? 1000 : undefined);
  const input: DnsbenchInput = {
    server: first.host,
    port: first.port,
    queries,
    concurrency: f.concurrency,
    timeoutMs: f.timeout * 1000,
    slowMs: f.slow * 1000,
    tcpRetry: f.tcp === true,
    warnings,
    ...(number !== undefined ? { total: number } : {}),
    ...(f.duration !== undefined ? { durationMs: f.duration * 1000 } : {}),
    ...(f.qps !== undefined ? { qps: f.qps } : {}),
    ...(f.sockets !== undefined ? { sockets: f.sockets } : {}),
  };
  if (conf !== undefined) {
    input.resolver = {
      conf,
      nameservers: servers,
      longLived: f.longLived === true,
      ...(f.singleRequest ? { singleRequest: true } : {}),
      ...(f.singleRequestReopen ? { singleRequestReopen: true, singleRequest: true } : {}),
      // Where the value came from, not whether it equals the default: `--timeout 5` beats `options timeout:2`.
      ...(f.given.has('timeout') ? { timeoutSeconds: f.timeout } : {}),
    };
  }
  return input;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function fromEngine(input: DnsbenchInput, res: EngineResult, lookups: LookupStats | null, header: ResultHeader = startHeader('dnsbench').finish()): DnsbenchResult {
  const h = res.histogram;
  // In resolver mode the timeout that matters is the resolver's own (options timeout:).
  const timeoutMs = lookups?.timeoutMs ?? input.timeoutMs;
  let resolver: DnsbenchResult['resolver'] = null;
  if (lookups) {
    const { lookups: _n, lookupLatencyMs: _l, stalls: _s, overTimeout: _o, ...rest } = lookups;
    resolver = { ...rest, lookupsPerSecond: Number(rate(lookups.lookups, res.durationMs).toFixed(1)) };
  }
  const servers = input.resolver ? input.resolver.nameservers.map((n) => formatHostPort(n.host, n.port)) : [formatHostPort(input.server, input.port)];
  const base: Omit<DnsbenchResult, 'findings'> = {
    ...header,
    command: 'dnsbench',
    mode: lookups ? 'lookups' : 'queries',
    server: input.server,
    port: input.port,
    servers,
    concurrency: input.concurrency,
    qpsLimit: input.qps ?? null,
    timeoutMs,
    slowMs: input.slowMs,
    sent: res.sent,
    answered: res.answered,
    timeouts: res.timeouts,
    slow: res.slow,
    errors: res.errors,
    unattributedErrors: res.unattributedErrors,
    rcodes: res.rcodes,
    late: res.late,
    wrongId: res.wrongId,
    wrongQuestion: res.wrongQuestion,
    malformed: res.malformed,
    truncated: res.truncated,
    tcpRetries: res.tcpRetries,
    latencyMs: h.count > 0 ? h.summaryIn(1000) : null,
    qps: Number(rate(res.answered, res.durationMs).toFixed(1)),
    qpsToLastAnswer: res.lastAnswerMs !== null ? Number(rate(res.answered, res.lastAnswerMs).toFixed(1)) : null,
    durationMs: Number(res.durationMs.toFixed(1)),
    stalls: { over1s: h.countAtOrAbove(1_000_000), over5s: h.countAtOrAbove(5_000_000), over10s: h.countAtOrAbove(10_000_000) },
    histogram: h.toJSON(),
    interrupted: res.interrupted,
    sourcePorts: res.sourcePorts,
    localDrops: res.localDrops,
    lookups: lookups?.lookups ?? null,
    lookupLatencyMs: lookups && lookups.lookups > 0 ? lookups.lookupLatencyMs : null,
    lookupStalls: lookups ? { ...lookups.stalls, overTimeout: lookups.overTimeout } : null,
    resolver,
    warnings: input.warnings ?? [],
  };
  return { ...base, findings: sortFindings(findingsFor(base)) };
}

/**
 * Nothing but errors (refusals, unreachable): the run measured nothing. The
 * reason as one line, for exit 2; undefined when anything was answered or timed out.
 */
export function unreachableReason(r: DnsbenchResult): string | undefined {
  const errTotal = recordTotal(r.errors);
  if (r.answered > 0 || r.timeouts > 0 || errTotal === 0) return undefined;
  return `no answer from ${r.servers.join(', ')}: ${Object.entries(r.errors).map(([k, v]) => `${v} x ${k}`).join(', ')}`;
}

/** The optional knobs shared by both engines, without undefined keys. */
function common(input: DnsbenchInput) {
  return {
    ...(input.total !== undefined ? { total: input.total } : {}),
    ...(input.durationMs !== undefined ? { durationMs: input.durationMs } : {}),
    ...(input.qps !== undefined ? { qps: input.qps } : {}),
    ...(input.signal ? { signal: input.signal } : {}),
    ...(input.onSlow ? { onSlow: input.onSlow } : {}),
    ...(input.onProgress ? { onProgress: input.onProgress } : {}),
  };
}

export async function runDnsbench(input: DnsbenchInput, progressEveryMs?: number): Promise<DnsbenchResult> {
  const header = startHeader('dnsbench');
  if (input.resolver) {
    const { runResolverEmulation } = await import('../engine/resolver.js');
    const { engine, lookups } = await runResolverEmulation({
      ...input.resolver,
      names: input.queries instanceof QueryList ? [...input.queries.names()] : input.queries.map((q) => q.name),
      concurrency: input.concurrency,
      slowMs: input.slowMs,
      ...common(input),
      ...(progressEveryMs !== undefined ? { progressEveryMs } : {}),
    });
    return fromEngine(input, engine, lookups, header.finish());
  }
  const res = await runEngine({
    server: input.server,
    port: input.port,
    queries: input.queries,
    concurrency: input.concurrency,
    timeoutMs: input.timeoutMs,
    slowMs: input.slowMs,
    tcpRetry: input.tcpRetry,
    ...(input.sockets !== undefined ? { sockets: input.sockets } : {}),
    ...(progressEveryMs !== undefined ? { progressEveryMs } : {}),
    ...common(input),
  });
  return fromEngine(input, res, null, header.finish());
}

