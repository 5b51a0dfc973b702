/**
 * watch on the node of the namespace lab (../helpers/lab.ts), live, while real clients in the pod resolve through the
 * Service's DNAT: glibc's getaddrinfo (getent ahosts) and musl's (a static program built by musl-gcc) under the race
 * stand-in, and dnsbench's raw queries with one endpoint dropping a third of what it gets. Counts are checked against
 * the endpoints' own logs of every query they saw and dropped; the lost queries are attributed to the endpoint their
 * flow was DNATed to.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOLS, need, titled } from '../helpers/tools.js';
import { BIN } from '../helpers/run.js';
import { netnsGate } from '../helpers/netns.js';
import { ENDPOINTS, scene } from '../helpers/lab.js';
import type { Scene } from '../helpers/lab.js';
import { execa } from 'execa';

const lab = await netnsGate(TOOLS.tcpdump);
const usable = lab.ok;
if (!usable && process.env.CI) throw new Error('the watch lab tests need root, iproute2, iptables and tcpdump');
const NO_SEARCH = 'nameserver 198.18.0.10\noptions ndots:1 timeout:1 attempts:2\n';
// Made by a hook its cleanup is paired with: a file whose every test skips makes none and leaves none behind.
let logs = '';
beforeAll(() => {
  logs = mkdtempSync(join(tmpdir(), 'k8sdiag-watchlab-'));
});
afterAll(() => (logs === '' ? undefined : rmSync(logs, { recursive: true, force: true })));
/** The truncation test runs dig and a static musl program as well. */
const truncation = await need(TOOLS.dig, TOOLS.muslGcc);

interface Group { queries: number; answered: number; unanswered: number; answeredAfterResend: number; raceSignature: number; searchQueries: number; truncated: number; truncatedNoTcp: number; truncatedTcpFailed: number; rcodes: Record<string, number> }
interface Doc extends Group {
  tcpAfterTruncated: number;
  tcp: number;
  tcpUnanswered: number;
  inFlightAtEnd: number;
  raceSignatureDnated: number;
  pairs: number;
  lone: number;
  byEndpoint: Record<string, Group>;
  byClient: Record<string, Group>;
  capture: { kernelDrops: number | null; source: string; cut: number };
  interrupted: boolean;
  findings: Array<{ code: string; severity: string; message: string; subject: Record<string, unknown> }>;
}

/** `k8sdiag watch -i any` in the node's namespace, running once tcpdump listens; stop() ends it with SIGTERM. */
async function watchOnNode(s: Scene, timeoutS: number): Promise<{ stop: () => Promise<{ doc: Doc; code: number; stderr: string }> }> {
  const p = spawn('ip', ['netns', 'exec', s.node.name, process.execPath, BIN, 'watch', '-i', 'any', '--json', '--timeout', String(timeoutS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => (p.kill('SIGKILL'), reject(new Error(`watch did not start: ${err}`))), 20_000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/tcpdump listening on/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    p.on('exit', () => reject(new Error(`watch exited: ${err}`)));
  });
  return {
    stop: async () => {
      const exited = new Promise<number>((resolve) => p.once('exit', (code) => resolve(code ?? -1)));
      p.kill('SIGTERM');
      const code = await exited;
      if (out.trim() === '') throw new Error(`watch printed nothing: exit ${code}: ${err}`);
      return { doc: JSON.parse(out) as Doc, code, stderr: err };
    },
  };
}

/** dnsbench's raw A queries from the pod to the Service address: `n` of them, `c` at a time. */
async function rawQueriesFromPod(s: Scene, n: number, c: number): Promise<void> {
  const r = await s.pod.exec(process.execPath, [BIN, 'dnsbench', '--server', '198.18.0.10', '-n', String(n), '-c', String(c), '--timeout', '1', '--json', '-d', 'google.com', '--no-progress'], { timeout: 60_000 });
  expect([0, 1]).toContain(r.exitCode);
}

/** An endpoint's log of every query it saw, one record each. */
function seenBy(file: string): Array<{ action: string; name: string; type: string; proto: string }> {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { action: string; name: string; type: string; proto: string });
}

/** An endpoint's log of every query it saw: how many, and how many it dropped. */
function served(file: string): { seen: number; dropped: number } {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { action: string });
  return { seen: lines.length, dropped: lines.filter((l) => l.action === 'drop').length };
}

describe.skipIf(!usable)(titled('watch on the lab node', lab), () => {
  it("real glibc under the race stand-in: every lookup's AAAA lost once and answered after the resend, the race's signature on DNATed flows", async () => {
    // The A answered 250 ms late: the AAAA reaches the node's FORWARD while the flow has no reply yet, even when a
    // loaded machine leaves packets waiting tens of milliseconds for their softirq. glibc resends in single-request
    // mode, the A and then the AAAA, so the AAAA's resend comes 250 ms after its 1 s timeout: watch is told 2 s, so
    // the resend is still within the time it waits for an answer (the timeout and a fifth of it).
    const s = await scene({ resolv: NO_SEARCH, race: true, faultA: ['delay:250@type=A'], faultB: ['delay:250@type=A'] });
    const w = await watchOnNode(s, 2);
    const lookups = 10;
    for (let k = 0; k < lookups; k++) {
      const g = await s.pod.exec('getent', ['ahosts', 'google.com'], { timeout: 30_000 });
      expect(g.exitCode, g.stderr).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const { doc, code } = await w.stop();
    expect(code, 'SIGTERM: reported, then 143').toBe(143);
    expect(doc.interrupted).toBe(true);
    expect(doc.capture.kernelDrops).toBe(0);
    expect(doc.pairs).toBeGreaterThanOrEqual(lookups);
    expect(doc.raceSignature).toBe(lookups);
    expect(doc.answeredAfterResend).toBe(lookups);
    expect(doc.unanswered).toBe(0);
    expect(doc.raceSignatureDnated).toBe(lookups);
    const race = doc.findings.find((f) => f.code === 'RACE_SIGNATURE');
    expect(race?.severity, race?.message).toBe('critical');
    expect(Object.keys(doc.byClient)).toEqual(['198.18.7.1']);
    // Every query attributed to one of the two endpoints it was DNATed to, none to the Service address itself.
    // (Which endpoints a handful of lookups were DNATed to is chance: each key must be one of them.)
    expect(Object.keys(doc.byEndpoint).length).toBeGreaterThan(0);
    for (const k of Object.keys(doc.byEndpoint)) expect(ENDPOINTS.map((e) => `${e}:53`)).toContain(k);
  }, 120_000);

  it('one endpoint dropping a third of its queries: that endpoint named, the other clean; counts as the endpoints logged them', async () => {
    const [la, lb] = [join(logs, 'a.ndjson'), join(logs, 'b.ndjson')];
    const s = await scene({ resolv: NO_SEARCH, faultB: ['drop@fraction=0.33'], logA: la, logB: lb });
    const w = await watchOnNode(s, 1);
    await rawQueriesFromPod(s, 600, 50);
    await new Promise((res) => setTimeout(res, 1500));
    const { doc } = await w.stop();
    const a = served(la);
    const b = served(lb);
    expect(a.dropped).toBe(0);
    expect(b.dropped).toBeGreaterThan(20);
    const ea = doc.byEndpoint[`${ENDPOINTS[0]}:53`]!;
    const eb = doc.byEndpoint[`${ENDPOINTS[1]}:53`]!;
    expect([ea.queries, ea.unanswered]).toEqual([a.seen, 0]);
    expect([eb.queries, eb.unanswered]).toEqual([b.seen, b.dropped]);
    expect(doc.queries).toBe(600);
    const lost = doc.findings.filter((f) => f.code === 'WATCHED_ENDPOINT_LOSS');
    expect(lost.map((f) => f.subject['address'])).toEqual([`${ENDPOINTS[1]}:53`]);
    expect(doc.findings.map((f) => f.code)).not.toContain('RACE_SIGNATURE');
  }, 120_000);

  it('a clean path: every query answered, nothing unanswered, no finding', async () => {
    const s = await scene({ resolv: NO_SEARCH });
    const w = await watchOnNode(s, 1);
    for (let k = 0; k < 5; k++) expect((await s.pod.exec('getent', ['ahosts', 'google.com'])).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const { doc } = await w.stop();
    expect(doc.queries).toBeGreaterThanOrEqual(10);
    expect(doc.answered + doc.inFlightAtEnd).toBe(doc.queries);
    expect(doc.unanswered + doc.answeredAfterResend + doc.raceSignature).toBe(0);
    expect(doc.findings).toEqual([]);
  }, 120_000);
});

describe.skipIf(!usable)(titled('watch on the lab node: what the real traffic costs and fails', lab), () => {
  it('real glibc with ndots:5 and three search domains: the NXDOMAIN search names counted as the endpoints logged them; none with a trailing dot', async () => {
    const [la, lb] = [join(logs, 'sa.ndjson'), join(logs, 'sb.ndjson')];
    const resolv = 'nameserver 198.18.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:2\n';
    const s = await scene({ resolv, faultA: ['nxdomain:cluster.local'], faultB: ['nxdomain:cluster.local'], logA: la, logB: lb });
    const w = await watchOnNode(s, 1);
    for (let k = 0; k < 5; k++) expect((await s.pod.exec('getent', ['ahosts', 'google.com'])).exitCode).toBe(0);
    for (let k = 0; k < 5; k++) expect((await s.pod.exec('getent', ['ahosts', 'google.com.'])).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const { doc } = await w.stop();
    const seen = [...seenBy(la), ...seenBy(lb)];
    const searchNames = seen.filter((q) => q.name.endsWith('.cluster.local'));
    // glibc tries each of the three search domains, A and AAAA, before the name itself: 6 per lookup without the dot.
    expect(searchNames.length).toBe(5 * 3 * 2);
    expect(doc.queries).toBe(seen.length);
    expect(doc.searchQueries).toBe(searchNames.length);
    expect(doc.byClient['198.18.7.1']!.searchQueries).toBe(searchNames.length);
    const waste = doc.findings.find((f) => f.code === 'SEARCH_LIST_WASTE');
    expect(waste?.subject).toEqual({ kind: 'client', address: '198.18.7.1', pod: null });
    // 50 queries for 20 names asked: 2.5 per name (4.0 for the five lookups without the dot, 1.0 for those with it).
    expect(waste?.message).toContain(`${(seen.length / (seen.length - searchNames.length)).toFixed(1)} queries per name asked`);
  }, 120_000);

  it.skipIf(!truncation.ok)(titled('truncated answers: dig retries over TCP, static musl 1.2.3 does not; with TCP blocked, dig tries and gets nothing through', truncation), async () => {
    const [la, lb] = [join(logs, 'ta.ndjson'), join(logs, 'tb.ndjson')];
    // 40 addresses an answer: about 700 bytes over TCP, past the 512 bytes a packet the UDP capture keeps.
    const many = Array.from({ length: 40 }, (_, i) => ['--a', `192.0.2.${i + 1}`]).flat();
    const s = await scene({ resolv: NO_SEARCH, faultA: ['truncate'], faultB: ['truncate'], logA: la, logB: lb, serveArgs: many });
    const bin = await muslGai();
    const w = await watchOnNode(s, 1);
    for (let k = 0; k < 4; k++) {
      const d = await s.pod.exec('dig', ['@198.18.0.10', `d${k}.example`, 'A', '+tries=1', '+time=2']);
      expect(d.stdout).toMatch(/Truncated, retrying in TCP mode[\s\S]*\(TCP\)/);
    }
    // musl's turn after dig's last TCP connection has settled: a connection is a client's, not a question's.
    for (let k = 0; k < 3; k++) await s.pod.exec(bin, [`m${k}.example`], { timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 2500));
    const { doc } = await w.stop();
    const seen = [...seenBy(la), ...seenBy(lb)];
    const digTcp = seen.filter((q) => q.proto === 'tcp' && q.name.startsWith('d'));
    const muslUdp = seen.filter((q) => q.proto === 'udp' && q.name.startsWith('m'));
    expect(digTcp.length).toBe(4);
    expect(seen.filter((q) => q.name.startsWith('m') && q.proto === 'tcp')).toEqual([]);
    expect(doc.truncated).toBe(seen.filter((q) => q.proto === 'udp').length);
    expect(doc.tcpAfterTruncated).toBe(4);
    expect(doc.truncatedNoTcp).toBe(muslUdp.length);
    expect(doc.truncatedTcpFailed).toBe(0);
    // The long answers over TCP captured whole and read: every TCP query answered, nothing cut.
    expect([doc.tcp, doc.tcpUnanswered, doc.capture.cut]).toEqual([4, 0, 0]);
    const f = doc.findings.find((x) => x.code === 'TRUNCATED_NOT_RETRIED');
    expect(f?.subject['address']).toBe('198.18.7.1');
    expect(doc.findings.map((x) => x.code)).not.toContain('TCP_FALLBACK_FAILING');

    const blocked = await scene({ resolv: NO_SEARCH, faultA: ['truncate'], faultB: ['truncate'], blockTcp: true });
    const w2 = await watchOnNode(blocked, 1);
    for (let k = 0; k < 3; k++) await blocked.pod.exec('dig', ['@198.18.0.10', `b${k}.example`, 'A', '+tries=1', '+time=1']);
    await new Promise((r) => setTimeout(r, 1500));
    const d2 = (await w2.stop()).doc;
    expect(d2.truncated).toBe(3);
    expect(d2.truncatedTcpFailed).toBe(3);
    expect(d2.tcpAfterTruncated).toBe(0);
    expect(d2.findings.map((x) => x.code)).toContain('TCP_FALLBACK_FAILING');
    expect(d2.findings.map((x) => x.code)).not.toContain('TRUNCATED_NOT_RETRIED');
  }, 180_000);

  it('one endpoint answering SERVFAIL: that endpoint named, its count as it logged it; the other not', async () => {
    const [la, lb] = [join(logs, 'fa.ndjson'), join(logs, 'fb.ndjson')];
    const s = await scene({ resolv: NO_SEARCH, faultB: ['servfail'], logA: la, logB: lb });
    const w = await watchOnNode(s, 1);
    await rawQueriesFromPod(s, 200, 20);
    await new Promise((res) => setTimeout(res, 300));
    const { doc } = await w.stop();
    const b = seenBy(lb);
    expect(b.length).toBeGreaterThan(20);
    expect(doc.byEndpoint[`${ENDPOINTS[1]}:53`]!.rcodes['SERVFAIL']).toBe(b.length);
    expect(doc.byEndpoint[`${ENDPOINTS[0]}:53`]!.rcodes['SERVFAIL'] ?? 0).toBe(0);
    const f = doc.findings.filter((x) => x.code === 'WATCHED_SERVER_FAILURES');
    expect(f.map((x) => [x.subject['address'], x.severity])).toEqual([[`${ENDPOINTS[1]}:53`, 'critical']]);
  }, 120_000);
});

const musl = await need(TOOLS.muslGcc);
const haveMusl = musl.ok;
/** A static musl program that resolves its argument with getaddrinfo (AF_UNSPEC: A and AAAA), as an Alpine pod does. */
const GAI_C = `#include <netdb.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  int rc = getaddrinfo(argv[1], NULL, &hints, &res);
  if (rc != 0) { fprintf(stderr, "%s\\n", gai_strerror(rc)); return 1; }
  freeaddrinfo(res);
  return 0;
}
`;

/** The musl program, built once. */
let built: Promise<string> | undefined;
function muslGai(): Promise<string> {
  built ??= (async () => {
    const src = join(logs, 'gai.c');
    const bin = join(logs, 'gai-musl');
    writeFileSync(src, GAI_C);
    await execa('musl-gcc', ['-static', '-O2', '-o', bin, src]);
    return bin;
  })();
  return built;
}

describe.skipIf(!usable || !haveMusl)(titled(titled('watch on the lab node, a musl client', lab), musl), () => {
  it("real musl under the race stand-in: its AAAA lost, resent from the same port, the race's signature on DNATed flows", async () => {
    const bin = await muslGai();
    // musl reads the namespace's /etc/resolv.conf (ip netns exec binds /etc/netns/NAME/resolv.conf over it).
    // musl sends the A and the AAAA with two calls: the A answered 250 ms late, so the AAAA leaves while the flow has no
    // reply yet even on a loaded machine, where the process may wait tens of milliseconds between the two (at 40 ms a
    // CPU-bound job beside it can leave a lookup unraced); well before musl's resend, every 1 s (timeout 2 s, 2 attempts).
    const s = await scene({ resolv: 'nameserver 198.18.0.10\noptions ndots:1 timeout:2 attempts:2\n', race: true, faultA: ['delay:250@type=A'], faultB: ['delay:250@type=A'] });
    const w = await watchOnNode(s, 2);
    const lookups = 6;
    for (let k = 0; k < lookups; k++) {
      const g = await s.pod.exec(bin, ['google.com'], { timeout: 30_000 });
      expect(g.exitCode, g.stderr).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const { doc } = await w.stop();
    expect(doc.pairs).toBeGreaterThanOrEqual(lookups);
    expect(doc.raceSignature).toBe(lookups);
    expect(doc.answeredAfterResend).toBe(lookups);
    expect(doc.raceSignatureDnated).toBe(lookups);
    // (Which endpoints a handful of lookups were DNATed to is chance: each key must be one of them.)
    expect(Object.keys(doc.byEndpoint).length).toBeGreaterThan(0);
    for (const k of Object.keys(doc.byEndpoint)) expect(ENDPOINTS.map((e) => `${e}:53`)).toContain(k);
  }, 120_000);
});
