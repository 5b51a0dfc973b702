/**
 * Resolver emulation: each unit of work is a lookup done the way a pod's libc
 * does it (./resolver/glibc.ts, ./resolver/musl.ts), so the benchmark sees what
 * the application sees. This module runs the lookups: concurrency, budget,
 * pacing, and the lookup histogram.
 */
import { UserError } from '../errors.js';
import { Counters, Histogram, LATENCY_MARKS_US } from '../stats/index.js';
import type { EngineResult } from './engine.js';
import { RcodeCounts, slowEvent } from './accounting.js';
import { formatHostPort } from '../dns/wire.js';
import { readUdpSnmp, snmpDelta } from '../host/drops.js';
import { glibcLookup, glibcTryBudgetMs } from './resolver/glibc.js';
import type { GlibcMode } from './resolver/glibc.js';
import { muslLookup } from './resolver/musl.js';
import { PortSet, timeoutSeconds } from './resolver/shared.js';
import type { LookupOutcome, LookupStats, ResolverEmulationOptions, Shared } from './resolver/shared.js';

export { glibcTryBudgetMs } from './resolver/glibc.js';
export type { LookupOutcome, LookupStats, Nameserver, ResolverEmulationOptions } from './resolver/shared.js';

export async function runResolverEmulation(o: ResolverEmulationOptions): Promise<{ engine: EngineResult; lookups: LookupStats }> {
  const sh: Shared = {
    plans: new Map(),
    st: { sent: 0, answered: 0, timeouts: 0, slow: 0, late: 0, wrongId: 0, wrongQuestion: 0, malformed: 0, truncated: 0, tcpRetries: 0, cancelled: 0 },
    hist: new Histogram('us', LATENCY_MARKS_US),
    rcodes: new RcodeCounts(),
    errors: new Counters(),
    slowMs: o.slowMs,
    onSlow: o.onSlow,
    rotateOffset: 0,
    ports: new PortSet(),
    lastAnswerAt: -1,
  };
  if (o.nameservers.length === 0) throw new UserError('no nameservers to send to', 'give --server, or a resolv.conf with a nameserver line');
  // The wait of a lookup's first try, the stall threshold: glibc waits at least 1 s (timeout:0 too); musl its timeout.
  const timeoutMs = o.conf.libc === 'musl' ? timeoutSeconds(o) * 1000 : glibcTryBudgetMs(timeoutSeconds(o), 0, o.nameservers.length);
  const lookupHist = new Histogram('us', [...LATENCY_MARKS_US, timeoutMs * 1000]);
  let erroredAfterTimeout = 0;
  const snmpBefore = readUdpSnmp();
  const outcomes = new Counters();
  const switches = { singleRequest: 0, singleRequestReopen: 0 };
  const c = Math.max(1, Math.floor(o.concurrency));
  const total = o.total ?? Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  const deadline = o.durationMs !== undefined ? t0 + o.durationMs : Number.POSITIVE_INFINITY;
  const interval = o.qps !== undefined && o.qps > 0 ? 1000 / o.qps : 0;
  let started = 0;
  let interrupted = false;
  let fatal: unknown;
  const baseMode = (): GlibcMode => ({
    singleRequest: o.singleRequest ?? (o.conf.options.singleRequest || o.conf.options.singleRequestReopen),
    reopen: o.singleRequestReopen ?? o.conf.options.singleRequestReopen,
  });

  const progress = o.onProgress
    ? setInterval(() => {
        o.onProgress?.({ sent: sh.st.sent, answered: sh.st.answered, timeouts: sh.st.timeouts, errors: sh.errors.total, inFlight: 0, elapsedMs: performance.now() - t0 });
      }, o.progressEveryMs ?? 500)
    : undefined;

  const worker = async (): Promise<void> => {
    const slotMode = baseMode();
    for (;;) {
      if (fatal !== undefined || o.signal?.aborted) {
        if (o.signal?.aborted) interrupted = true;
        return;
      }
      const now = performance.now();
      if (started >= total || now >= deadline) return;
      const k = started++;
      let scheduledAt = now;
      if (interval > 0) {
        scheduledAt = t0 + k * interval;
        if (scheduledAt > now) await new Promise((r) => setTimeout(r, scheduledAt - now));
      }
      const name = o.names[k % o.names.length]!;
      const mode = o.longLived ? slotMode : baseMode();
      let outcome: LookupOutcome;
      try {
        outcome = o.conf.libc === 'musl' ? await muslLookup(sh, o, name) : await glibcLookup(sh, o, name, mode, switches);
      } catch (err) {
        fatal = err;
        return;
      }
      outcomes.add(outcome);
      const tookMs = performance.now() - scheduledAt;
      lookupHist.record(tookMs * 1000);
      if (outcome === 'error' && tookMs * 1000 >= timeoutMs * 1000) erroredAfterTimeout++; // as the histogram compares
      if (tookMs > o.slowMs) {
        o.onSlow?.(slowEvent('lookup', name, 'lookup', o.nameservers.map((n) => formatHostPort(n.host, n.port)).join(','), 0, outcome, tookMs));
      }
    }
  };
  await Promise.all(Array.from({ length: c }, () => worker()));
  if (progress) clearInterval(progress);
  if (fatal !== undefined) throw fatal;
  const durationMs = performance.now() - t0;
  const { cancelled, ...st } = sh.st;
  return {
    engine: {
      ...st,
      errors: sh.errors.toJSON(),
      unattributedErrors: {},
      rcodes: sh.rcodes.toJSON(),
      histogram: sh.hist,
      durationMs,
      lastAnswerMs: sh.lastAnswerAt >= 0 ? sh.lastAnswerAt - t0 : null,
      interrupted,
      sourcePorts: sh.ports.size,
      localDrops: { ownSockets: null, namespace: snmpDelta(snmpBefore, readUdpSnmp()), recvBufferBytes: null },
    },
    lookups: {
      libc: o.conf.libc,
      lookups: lookupHist.count,
      outcomes: outcomes.toJSON(),
      lookupLatencyMs: lookupHist.summaryIn(1000),
      timeoutMs,
      stalls: { over1s: lookupHist.countAtOrAbove(1_000_000), over5s: lookupHist.countAtOrAbove(5_000_000) },
      overTimeout: lookupHist.countAtOrAbove(timeoutMs * 1000),
      erroredAfterTimeout,
      modeSwitches: switches,
      cancelled,
      histogram: lookupHist.toJSON(),
    },
  };
}

