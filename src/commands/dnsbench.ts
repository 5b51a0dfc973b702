/** `k8sdiag dnsbench`: options -> engine (or resolver emulation) -> typed result with findings. */
import type { RecordType } from 'dns-packet';
import { runEngine } from '../bench/engine.js';
import type { EngineOptions, EngineResult, QuerySpec, QueryStats } from '../bench/engine.js';
import type { LookupStats, ResolverEmulationOptions } from '../bench/resolver.js';
import { UserError } from '../errors.js';
import type { Finding } from '../findings.js';
import { sortFindings } from '../findings.js';
import { parseType } from '../dns/wire.js';
import { rate } from '../stats/index.js';
import type { HistogramSnapshot, PercentileSummary } from '../stats/index.js';

/** The engine's options; with `resolver`, the same budget drives lookups instead of queries. */
export interface DnsbenchInput extends Omit<EngineOptions, 'tcpRetry' | 'sockets' | 'progressEveryMs'> {
  tcpRetry: boolean;
  /** Resolver emulation (--resolv): each unit is a lookup as a libc does it. */
  resolver?: Omit<ResolverEmulationOptions, 'names' | 'concurrency' | 'total' | 'durationMs' | 'qps' | 'slowMs' | 'signal' | 'onSlow' | 'onProgress'>;
}

/** The per-query counters of the engine (sent, answered, timeouts, slow, errors, rcodes, late, ...). */
export interface DnsbenchResult extends QueryStats {
  command: 'dnsbench';
  mode: 'queries' | 'lookups';
  server: string;
  port: number;
  concurrency: number;
  qpsLimit: number | null;
  timeoutMs: number;
  slowMs: number;
  latencyMs: PercentileSummary;
  qps: number;
  durationMs: number;
  /** Answered queries slower than 1 s / 5 s / 10 s: where resolver retries land. */
  stalls: { over1s: number; over5s: number; over10s: number };
  /** The latency histogram, microseconds, mergeable across runs and nodes. */
  histogram: HistogramSnapshot;
  interrupted: boolean;
  /** Resolver mode (--resolv): lookups done, what the application feels. Null otherwise. */
  lookups: number | null;
  lookupLatencyMs: PercentileSummary | null;
  /** Lookups slower than 1 s, 5 s, and the resolver's own timeout (the retry signature). */
  lookupStalls: { over1s: number; over5s: number; overTimeout: number } | null;
  /** Resolver mode details: libc, outcomes, glibc's mode switches, the lookup histogram. */
  resolver: (Omit<LookupStats, 'lookups' | 'lookupLatencyMs' | 'stalls' | 'overTimeout'> & { lookupsPerSecond: number }) | null;
  findings: Finding[];
}

/** Read a --queries file: `name [TYPE]` per line; # comments and blank lines skipped. */
export function parseQueriesFile(text: string, defaultType: RecordType): QuerySpec[] {
  const out: QuerySpec[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const [name = '', typeRaw, extra] = line.split(/\s+/);
    if (extra !== undefined) throw new UserError(`queries file line ${i + 1}: expected "name [TYPE]", got "${line.slice(0, 60)}"`);
    let type = defaultType;
    if (typeRaw !== undefined) {
      const t = parseType(typeRaw);
      if (t === undefined) throw new UserError(`queries file line ${i + 1}: unknown record type "${typeRaw}"`);
      type = t;
    }
    if (!/^[A-Za-z0-9_.-]+\.?$/.test(name) || name.includes('..')) throw new UserError(`queries file line ${i + 1}: "${name.slice(0, 60)}" is not a domain name`);
    out.push({ name, type });
  });
  if (out.length === 0) throw new UserError('the queries file has no queries', 'one "name [TYPE]" per line');
  return out;
}

function findingsFor(r: Omit<DnsbenchResult, 'findings'>): Finding[] {
  const f: Finding[] = [];
  const pct = (n: number, of: number): string => (of > 0 ? `${((n / of) * 100).toFixed(2)}%` : '0%');
  if (r.timeouts > 0) {
    f.push({
      code: 'TIMEOUTS',
      severity: 'warning',
      message: `${r.timeouts} of ${r.sent} queries (${pct(r.timeouts, r.sent)}) got no reply within ${r.timeoutMs / 1000} s`,
      evidence: { timeouts: r.timeouts, sent: r.sent, timeoutMs: r.timeoutMs, late: r.late },
      remedy: 'check `k8sdiag conntrack` on the node for insert_failed and drops; compare with a run against the node-local cache or a pod IP to find the hop that loses packets',
    });
  }
  if (r.slow > 0) {
    f.push({
      code: 'SLOW',
      severity: 'warning',
      message: `${r.slow} answered queries were slower than ${r.slowMs / 1000} s (max ${r.latencyMs.max} ms)`,
      evidence: { slow: r.slow, slowMs: r.slowMs, maxMs: r.latencyMs.max },
      remedy: 'a reply after several seconds usually means a lost packet and a resend; see the latency histogram for the 1 s / 5 s marks',
    });
  }
  if (r.lookups !== null && r.lookupStalls !== null && r.resolver !== null && r.lookupStalls.overTimeout > 0) {
    const t = r.resolver.timeoutMs / 1000;
    f.push({
      code: 'LOOKUP_STALLS',
      severity: 'warning',
      message:
        `${r.lookupStalls.overTimeout} of ${r.lookups} lookups took ${t} s or more: the resolver's timeout and resend, the signature of a lost A or AAAA packet` +
        (r.resolver.modeSwitches.singleRequest > 0 ? ` (glibc fell back to single-request ${r.resolver.modeSwitches.singleRequest} times)` : ''),
      evidence: { overTimeout: r.lookupStalls.overTimeout, over1s: r.lookupStalls.over1s, over5s: r.lookupStalls.over5s, lookups: r.lookups, resolverTimeoutS: t, singleRequestSwitches: r.resolver.modeSwitches.singleRequest },
      remedy: 'options single-request-reopen in the pod\'s dnsConfig, NodeLocalDNS, or a kernel with the conntrack clash fixes; check `k8sdiag conntrack` for insert_failed',
    });
  }
  const errTotal = Object.values(r.errors).reduce((a, b) => a + b, 0);
  if (errTotal > 0) {
    f.push({
      code: 'ERRORS',
      severity: 'warning',
      message: `${errTotal} queries ended in a socket error: ${Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      evidence: r.errors,
      remedy: r.errors.ECONNREFUSED ? 'ECONNREFUSED: nothing listens on that address and port (ICMP port unreachable)' : '',
    });
  }
  const bogus = r.wrongId + r.wrongQuestion + r.malformed;
  if (bogus > 0) {
    f.push({
      code: 'BOGUS_REPLIES',
      severity: 'warning',
      message: `${bogus} replies were ignored: ${r.wrongId} with an unknown ID, ${r.wrongQuestion} with the wrong question, ${r.malformed} malformed`,
      evidence: { wrongId: r.wrongId, wrongQuestion: r.wrongQuestion, malformed: r.malformed },
      remedy: 'something between client and server rewrites or forges replies, or the server is broken',
    });
  }
  const servfail = r.rcodes.SERVFAIL ?? 0;
  if (servfail > 0) {
    f.push({
      code: 'SERVFAIL',
      severity: 'info',
      message: `${servfail} answers were SERVFAIL (${pct(servfail, r.answered)} of answers)`,
      evidence: { SERVFAIL: servfail },
      remedy: 'the server could not resolve: check its upstreams and logs',
    });
  }
  if (r.truncated > 0) {
    f.push({
      code: 'TRUNCATED',
      severity: 'info',
      message: `${r.truncated} replies were truncated (TC)${r.tcpRetries > 0 ? `; ${r.tcpRetries} retried over TCP` : '; rerun with --tcp to retry them over TCP'}`,
      evidence: { truncated: r.truncated, tcpRetries: r.tcpRetries },
      remedy: '',
    });
  }
  return f;
}

export function fromEngine(input: DnsbenchInput, res: EngineResult, lookups: LookupStats | null): DnsbenchResult {
  const h = res.histogram;
  // In resolver mode the timeout that matters is the resolver's own (options timeout:).
  const timeoutMs = lookups?.timeoutMs ?? input.timeoutMs;
  let resolver: DnsbenchResult['resolver'] = null;
  if (lookups) {
    const { lookups: _n, lookupLatencyMs: _l, stalls: _s, overTimeout: _o, ...rest } = lookups;
    resolver = { ...rest, lookupsPerSecond: Number(rate(lookups.lookups, res.durationMs).toFixed(1)) };
  }
  const base: Omit<DnsbenchResult, 'findings'> = {
    command: 'dnsbench',
    mode: lookups ? 'lookups' : 'queries',
    server: input.server,
    port: input.port,
    concurrency: input.concurrency,
    qpsLimit: input.qps ?? null,
    timeoutMs,
    slowMs: input.slowMs,
    sent: res.sent,
    answered: res.answered,
    timeouts: res.timeouts,
    slow: res.slow,
    errors: res.errors,
    rcodes: res.rcodes,
    late: res.late,
    wrongId: res.wrongId,
    wrongQuestion: res.wrongQuestion,
    malformed: res.malformed,
    truncated: res.truncated,
    tcpRetries: res.tcpRetries,
    latencyMs: h.summaryIn(1000),
    qps: Number(rate(res.answered, res.durationMs).toFixed(1)),
    durationMs: Number(res.durationMs.toFixed(1)),
    stalls: { over1s: h.countAtOrAbove(1_000_000), over5s: h.countAtOrAbove(5_000_000), over10s: h.countAtOrAbove(10_000_000) },
    histogram: h.toJSON(),
    interrupted: res.interrupted,
    lookups: lookups?.lookups ?? null,
    lookupLatencyMs: lookups?.lookupLatencyMs ?? null,
    lookupStalls: lookups ? { ...lookups.stalls, overTimeout: lookups.overTimeout } : null,
    resolver,
  };
  return { ...base, findings: sortFindings(findingsFor(base)) };
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

export async function runDnsbench(input: DnsbenchInput): Promise<DnsbenchResult> {
  if (input.resolver) {
    const { runResolverEmulation } = await import('../bench/resolver.js');
    const { engine, lookups } = await runResolverEmulation({
      ...input.resolver,
      names: input.queries.map((q) => q.name),
      concurrency: input.concurrency,
      slowMs: input.slowMs,
      ...common(input),
    });
    return fromEngine(input, engine, lookups);
  }
  const res = await runEngine({
    server: input.server,
    port: input.port,
    queries: input.queries,
    concurrency: input.concurrency,
    timeoutMs: input.timeoutMs,
    slowMs: input.slowMs,
    tcpRetry: input.tcpRetry,
    ...common(input),
  });
  return fromEngine(input, res, null);
}
