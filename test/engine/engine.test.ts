/**
 * The fast engine against a real responder on loopback: exact accounting
 * under every fault. sent = answered + timeouts + errors, always.
 */
import { describe, expect, it } from 'vitest';
import { runEngine } from '../../src/engine/engine.js';
import type { EngineOptions, SlowEvent } from '../../src/engine/engine.js';
import { parseFault } from '../../src/dns/responder.js';
import type { Responder } from '../../src/dns/responder.js';
import { startResponder } from '../helpers/responders.js';
import { closedUdpPort } from '../helpers/servers.js';
import { engineOptions } from '../helpers/engine.js';

const serve = (faults: string[] = [], host = '127.0.0.1'): Promise<Responder> => startResponder({ host, faults: faults.map(parseFault) });

async function bench(r: Responder, o: Partial<EngineOptions> = {}) {
  const res = await runEngine(engineOptions(r.udpPort, o));
  const errors = Object.values(res.errors).reduce((a, b) => a + b, 0);
  expect(res.sent, 'sent = answered + timeouts + errors').toBe(res.answered + res.timeouts + errors);
  return res;
}

describe('engine accounting', () => {
  it('no faults: every query answered NOERROR; the server saw exactly n queries', async () => {
    const r = await serve();
    const res = await bench(r, { total: 1000, concurrency: 50 });
    expect(res).toMatchObject({ sent: 1000, answered: 1000, timeouts: 0, slow: 0, wrongId: 0, wrongQuestion: 0, late: 0 });
    expect(res.rcodes).toEqual({ NOERROR: 1000 });
    expect(res.histogram.count).toBe(1000);
    expect(r.stats.queries).toBe(1000);
  });

  it('drop every 10th: exactly 10% time out', async () => {
    const r = await serve(['drop@every=10']);
    const res = await bench(r);
    expect(res).toMatchObject({ sent: 200, answered: 180, timeouts: 20 });
  });

  it('SERVFAIL and NXDOMAIN are counted by rcode', async () => {
    const r = await serve(['servfail@every=4', 'nxdomain:google.com@every=5']);
    const res = await bench(r);
    // every 4th: SERVFAIL (50); every 5th of all: NXDOMAIN unless already SERVFAIL (the 20th, 40th, ...: 10)
    expect(res.rcodes).toEqual({ NOERROR: 120, SERVFAIL: 50, NXDOMAIN: 30 });
    expect(res.answered).toBe(200);
  });

  it('a query whose only reply had the wrong ID ends as a timeout; the bogus reply is counted', async () => {
    const r = await serve(['wrong-id@every=5']);
    const res = await bench(r);
    expect(res).toMatchObject({ sent: 200, answered: 160, timeouts: 40, wrongId: 40 });
  });

  it('a reply with the wrong question is ignored and counted', async () => {
    const r = await serve(['wrong-question@every=5']);
    const res = await bench(r);
    expect(res).toMatchObject({ sent: 200, answered: 160, timeouts: 40, wrongQuestion: 40 });
  });

  it('truncated replies are counted; with tcpRetry they are answered over TCP', async () => {
    const r = await serve(['truncate@every=4']);
    const plain = await bench(r);
    expect(plain).toMatchObject({ answered: 200, truncated: 50, tcpRetries: 0 });
    const r2 = await serve(['truncate@every=4']);
    const tcp = await bench(r2, { tcpRetry: true });
    expect(tcp).toMatchObject({ sent: 200, answered: 200, truncated: 50, tcpRetries: 50, timeouts: 0 });
  });

  it('late replies after a timeout are counted as late, not as answers', async () => {
    const r = await serve(['delay:600@every=10']);
    const res = await bench(r, { total: 100, timeoutMs: 200, qps: 100 });
    expect(res).toMatchObject({ sent: 100, answered: 90, timeouts: 10 });
    expect(res.late).toBeGreaterThanOrEqual(1);
    expect(res.late).toBeLessThanOrEqual(10);
    expect(res.rcodes).toEqual({ NOERROR: 90 });
  });

  it('responses slower than the threshold are reported as they arrive', async () => {
    const r = await serve(['delay:250@every=20']);
    const slow: SlowEvent[] = [];
    const res = await bench(r, { total: 100, timeoutMs: 2000, slowMs: 200, onSlow: (e) => slow.push(e) });
    expect(res.slow).toBe(5);
    expect(slow).toHaveLength(5);
    for (const e of slow) {
      expect(e.latencyMs).toBeGreaterThanOrEqual(200);
      expect(e).toMatchObject({ name: 'google.com', type: 'A', rcode: 'NOERROR', server: `127.0.0.1:${r.udpPort}` });
      expect(e.sourcePort).toBeGreaterThan(0);
    }
    expect(res.histogram.countAtOrAbove(200_000)).toBe(5);
  });

  it('works over IPv6 loopback', async () => {
    const r = await serve([], '::1');
    const res = await bench(r, { server: '::1' });
    expect(res).toMatchObject({ sent: 200, answered: 200 });
  });

  it('a closed port ends in errors (ICMP port unreachable), not a hang', async () => {
    const port = await closedUdpPort();
    const res = await runEngine({ server: '127.0.0.1', port, queries: [{ name: 'x', type: 'A' }], concurrency: 1, total: 20, timeoutMs: 1000, slowMs: 5000 });
    expect(res.answered).toBe(0);
    expect(res.errors.ECONNREFUSED).toBe(20);
    expect(res.sent).toBe(20);
  });

  it('--qps paces the queries and counts latency from the schedule', async () => {
    const r = await serve();
    const t = performance.now();
    const res = await bench(r, { total: 50, qps: 100 });
    expect(res.answered).toBe(50);
    expect(performance.now() - t).toBeGreaterThanOrEqual(480);
  });

  it('--duration bounds the run and the signal stops it early', async () => {
    const r = await serve(['delay:50']);
    const res = await bench(r, { total: undefined, durationMs: 300, concurrency: 5 });
    expect(res.durationMs).toBeGreaterThanOrEqual(300);
    // Sending stopped at the deadline: 5 in flight, 50 ms each, for 300 ms is about 30 queries, never hundreds.
    expect(res.sent).toBeLessThanOrEqual(5 * Math.ceil(300 / 50 + 2));
    expect(res.sent).toBe(res.answered + res.timeouts);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const res2 = await bench(r, { total: 100_000, signal: ac.signal, concurrency: 5 });
    expect(res2.interrupted).toBe(true);
    expect(res2.sent).toBeLessThan(100_000);
  });

  it('cycles through several query names and types', async () => {
    const r = await serve();
    await bench(r, { total: 6, concurrency: 1, queries: [{ name: 'a.test', type: 'A' }, { name: 'b.test', type: 'AAAA' }, { name: 'c.test', type: 'TXT' }] });
    expect(r.seen.map((q) => `${q.name}/${q.type}`)).toEqual(['a.test/A', 'b.test/AAAA', 'c.test/TXT', 'a.test/A', 'b.test/AAAA', 'c.test/TXT']);
  });
});
