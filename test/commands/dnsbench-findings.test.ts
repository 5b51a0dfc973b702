/** dnsbench's finding rules on results written out: what each blames, and what it says is not ruled out. */
import { describe, expect, it } from 'vitest';
import { fromEngine } from '../../src/commands/dnsbench.js';
import type { DnsbenchInput } from '../../src/commands/dnsbench.js';
import type { EngineResult } from '../../src/engine/engine.js';
import type { LookupStats } from '../../src/engine/resolver/shared.js';
import { parseResolvConf } from '../../src/resolv/parse.js';
import { summarise } from '../../src/doctor/probes.js';
import { Histogram, LATENCY_MARKS_US } from '../../src/stats/index.js';

const conf = parseResolvConf('nameserver 10.96.0.10\noptions timeout:5 attempts:2\n', { libc: 'glibc' });
const input: DnsbenchInput = {
  server: '10.96.0.10', port: 53, queries: [{ name: 'google.com', type: 'A' }], concurrency: 10, timeoutMs: 5000, slowMs: 5000, tcpRetry: false,
  resolver: { conf, nameservers: [{ host: '10.96.0.10', port: 53 }], longLived: false },
};

/** 100 lookups, 3 of them waiting the 5 s timeout; `rcvbufErrors` replies dropped in this namespace meanwhile. */
function run(rcvbufErrors: number, outcomes: Record<string, number> = { answer: 100 }, erroredAfterTimeout = 0) {
  const h = new Histogram('us', LATENCY_MARKS_US);
  h.recordMany(2_000, 394);
  const lh = new Histogram('us', [...LATENCY_MARKS_US, 5_000_000]);
  lh.recordMany(4_000, 97);
  lh.recordMany(5_004_000, 3);
  const engine: EngineResult = {
    sent: 400, answered: 394, timeouts: 6, slow: 0, late: 0, wrongId: 0, wrongQuestion: 0, malformed: 0, truncated: 0, tcpRetries: 0,
    errors: {}, unattributedErrors: {}, rcodes: { NOERROR: 394 }, histogram: h, durationMs: 20_000, lastAnswerMs: 20_000, interrupted: false, sourcePorts: 103,
    localDrops: { ownSockets: null, namespace: { rcvbufErrors, inErrors: rcvbufErrors }, recvBufferBytes: null },
  };
  const lookups: LookupStats = {
    libc: 'glibc', lookups: 100, outcomes, lookupLatencyMs: lh.summaryIn(1000), timeoutMs: 5000, stalls: { over1s: 3, over5s: 3 },
    overTimeout: lh.countAtOrAbove(5_000_000), erroredAfterTimeout, modeSwitches: { singleRequest: 3, singleRequestReopen: 0 }, cancelled: 0, histogram: lh.toJSON(),
  };
  return fromEngine(input, engine, lookups);
}

describe('dnsbench findings', () => {
  it("a lookup that waited the timeout and then failed is a stall, not also a failure: doctor's probe counts each lookup once", () => {
    // 100 lookups: 93 answered; 3 waited the 5 s timeout (1 ended as a timeout, 2 in an error after it); 4 failed at once.
    const p = summarise('p', 'lookups', 'parallel', null, run(0, { answer: 93, timeout: 1, error: 6 }, 2));
    expect([p.units, p.stalled, p.failed]).toEqual([100, 3, 4]);
  });


  it('lookup stalls with no local drops: the lost packet, and the race\'s remedies', () => {
    const f = run(0).findings.find((x) => x.code === 'LOOKUP_STALLS')!;
    expect(f.message).toBe('3 of 100 lookups took 5 s or more: the resolver\'s timeout and resend, the signature of a lost A or AAAA packet (glibc fell back to single-request 3 times)');
    expect(f.remedy).toMatch(/^options single-request-reopen/);
    expect(f.evidence).toMatchObject({ overTimeout: 3, localDrops: 0 });
  });

  it('lookup stalls while this machine dropped replies: the local drops first, before the network', () => {
    const r = run(4);
    expect(r.findings.map((x) => x.code)).toContain('LOCAL_DROPS');
    const f = r.findings.find((x) => x.code === 'LOOKUP_STALLS')!;
    expect(f.message).toMatch(/; 4 replies were dropped by this machine's receive buffers meanwhile \(LOCAL_DROPS\), so some of the lost packets may be local$/);
    expect(f.remedy).toMatch(/^see LOCAL_DROPS first/);
    expect(f.evidence).toMatchObject({ localDrops: 4 });
  });

  it('errors by code, each with what it means: EPERM is this machine dropping the packet as it left', () => {
    const h = new Histogram('us', LATENCY_MARKS_US);
    h.recordMany(2_000, 90);
    const engine: EngineResult = {
      sent: 100, answered: 90, timeouts: 0, slow: 0, late: 0, wrongId: 0, wrongQuestion: 0, malformed: 0, truncated: 0, tcpRetries: 0,
      errors: { EPERM: 7, ECONNREFUSED: 3 }, unattributedErrors: {}, rcodes: { NOERROR: 90 }, histogram: h, durationMs: 1000, lastAnswerMs: 1000, interrupted: false, sourcePorts: 10,
      localDrops: { ownSockets: 0, namespace: null, recvBufferBytes: null },
    };
    const f = fromEngine({ ...input, resolver: undefined }, engine, null).findings.find((x) => x.code === 'ERRORS')!;
    expect(f.message).toBe('10 queries ended in an error: EPERM 7, ECONNREFUSED 3');
    expect(f.remedy).toMatch(/^ECONNREFUSED: nothing listens .*; EPERM: a rule on this machine .* dropped the packet as it left/);
  });
});
