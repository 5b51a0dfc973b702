/**
 * CoreDNS's /metrics: parsed from pages in CoreDNS 1.11's format, and read by doctor over HTTP on loopback before and
 * after its probes. The expected deltas are worked out by hand from the two pages (see test/fixtures/README.md).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseFault } from '../../src/dns/faults.js';
import { corednsDelta, corednsFigures, parseSamples } from '../../src/host/coredns.js';
import { readFixture, run } from '../helpers/run.js';
import { startResponder } from '../helpers/responders.js';

const before = readFixture('coredns/metrics-1.11-before.txt');
const after = readFixture('coredns/metrics-1.11-after.txt');
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

describe('the text format', () => {
  it('keeps each series of a labelled histogram apart, with its labels, sum and count', () => {
    const s = parseSamples(before);
    const counts = s.filter((x) => x.name === 'coredns_proxy_request_duration_seconds_count');
    expect(counts.map((x) => [x.labels['rcode'], x.labels['to'], x.value])).toEqual([['NOERROR', '10.0.0.2:53', 6596], ['SERVFAIL', '10.0.0.2:53', 31]]);
    expect(parseSamples('a{b="x\\"y\\\\z",c="1"} 2 1700000000000\nbad line\nc{d="unterminated} 1\nd +Inf\n')).toEqual([
      { name: 'a', labels: { b: 'x"y\\z', c: '1' }, value: 2 },
      { name: 'd', labels: {}, value: Infinity },
    ]);
  });

  it('what CoreDNS counted between the two pages', () => {
    const d = corednsDelta('http://x/metrics', corednsFigures(parseSamples(before)), corednsFigures(parseSamples(after)))!;
    // Forwarded: NOERROR 6396+200 -> 6444+400 (+248, of which 200 at 1.8 s and 48 at 1.5 ms), SERVFAIL 31 -> 243 (+212 at
    // 2.5 s): 460 forwarded, (200 x 1.8 + 48 x 0.0015 + 212 x 2.5) / 460 = 1.93494 s each.
    expect(d).toMatchObject({ version: '1.11.1', requests: 1260, forwarded: 460, forwardServfail: 212, forwardMeanSeconds: 1.9349, maxConcurrentRejects: 57, panics: 0, responsesServfail: 212 });
    // A restart (counters fell) is no delta.
    expect(corednsDelta('u', corednsFigures(parseSamples(after)), corednsFigures(parseSamples(before)))).toBeNull();
  });
});

describe('doctor with --coredns-metrics', () => {
  /** A page that serves `pages` in turn, the last one from then on; how many were asked for. */
  async function metricsPages(pages: string[]): Promise<{ url: string; served: () => number }> {
    let served = 0;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(pages[Math.min(served++, pages.length - 1)]);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, served: () => served };
  }
  const input = 'nameserver 127.0.0.1\noptions ndots:1 timeout:1\n';

  it('reads the page over a baseline, before and after the probes; quiet before and rising while the probes lose: CoreDNS overloaded and its upstream failing', async () => {
    // The baseline's pages are the same (nothing rose before the probes); after them, the rise the fixtures hold.
    const m = await metricsPages([before, before, after]);
    const r = await startResponder({ faults: [parseFault('drop@every=4')] });
    const res = await run(['doctor', '--json', '--resolv', '-', '-p', String(r.udpPort), '--budget', '3', '--coredns-metrics', m.url], { input });
    const doc = JSON.parse(res.stdout) as { findings: Array<{ code: string; severity: string }>; coredns: Array<{ url: string; baseline: unknown; baselineSeconds: number }>; steps: Array<{ step: string; ok: boolean }> };
    // The first read, one a second through the baseline (1 s at this budget), and one after the probes.
    expect(m.served()).toBe(3);
    expect(doc.coredns.map((d) => d.url)).toEqual([m.url]);
    expect(doc.coredns[0]!.baselineSeconds).toBeGreaterThan(0.9);
    const named = doc.findings.filter((f) => f.severity !== 'info').map((f) => f.code);
    expect(named).toEqual(expect.arrayContaining(['COREDNS_OVERLOADED', 'COREDNS_UPSTREAM']));
    expect(res.exitCode).toBe(1);
  });

  it('the same rise while the probes are all answered: notes about other traffic, not causes, exit 0', async () => {
    const m = await metricsPages([before, before, after]);
    const r = await startResponder();
    const res = await run(['doctor', '--json', '--resolv', '-', '-p', String(r.udpPort), '--budget', '3', '--coredns-metrics', m.url], { input });
    const doc = JSON.parse(res.stdout) as { findings: Array<{ code: string; severity: string; message: string }> };
    const over = doc.findings.find((f) => f.code === 'COREDNS_OVERLOADED')!;
    expect(over.severity).toBe('info');
    expect(over.message).toMatch(/doctor's probes lost nothing beyond chance/);
    expect(res.exitCode).toBe(0);
  });

  it('a page that cannot be read is that step\'s note; a URL that is not one is refused before anything is sent', async () => {
    const r = await startResponder();
    const input = 'nameserver 127.0.0.1\noptions ndots:1 timeout:1\n';
    // A port nothing listens on: a server opened and closed again.
    const closed = createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((res) => closed.close(() => res()));
    const url = `http://127.0.0.1:${port}/metrics`;
    const res = await run(['doctor', '--json', '--resolv', '-', '-p', String(r.udpPort), '--budget', '2', '--coredns-metrics', url], { input });
    const doc = JSON.parse(res.stdout) as { steps: Array<{ step: string; ok: boolean; note: string }> };
    expect(doc.steps.find((s) => s.step === 'coredns')).toMatchObject({ ok: false, note: `not read: ${url}: ECONNREFUSED` });
    expect(res.exitCode).toBe(0);
    const bad = await run(['doctor', '--resolv', '-', '-p', String(r.udpPort), '--coredns-metrics', 'file:///etc/passwd'], { input });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.trim()).toBe('k8sdiag: --coredns-metrics file:///etc/passwd: not an http:// or https:// URL');
  });
});
