/**
 * conntrack's events in `drops`: the lines conntrack-tools 1.4.7 printed in a namespace (the fixture) parsed strictly;
 * flows judged replied, unreplied or still waiting; the findings' gates; and, in a namespace of the test's own with a
 * kube-proxy-shaped DNAT to two endpoints, one of which receives every query and answers none: each flow counted
 * under the endpoint it was DNATed to, the silent endpoint's unreplied flows equal to the queries its own log shows,
 * named by the finding, and no drop in that namespace in the kernel's own trace (lost beyond the kernel).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlowTable, parseCtEvent } from '../../src/kernel/ct-events.js';
import { conntrackFindings } from '../../src/commands/drops.js';
import type { DropsResult } from '../../src/commands/drops.js';
import { renderDrops } from '../../src/render/drops.js';
import { makeStyle } from '../../src/render/style.js';
import { readFixture } from '../helpers/run.js';
import { kernelLabGate, netnsGate, netnsPerTest, serveIn } from '../helpers/netns.js';
import { startListening } from '../helpers/listening.js';
import { TOOLS, titled } from '../helpers/tools.js';

const lines = readFixture('kernel/conntrack-E-1.4.7.txt').split('\n');

describe("conntrack's event lines", () => {
  it('parses each event: the original tuple, the endpoint it was DNATed to, replied or not, its time and id', () => {
    const events = lines.map(parseCtEvent);
    expect(events[0]).toEqual({ ts: 1796647898.629324, type: 'NEW', proto: 'udp', src: '10.244.1.5', dst: '10.96.0.10', sport: 41326, dport: 53, replySrc: '127.0.0.2', replySport: 53, unreplied: true, id: 146567248 });
    expect(events[1]).toMatchObject({ type: 'UPDATE', unreplied: false, id: 146567248 });
    expect(events[4]).toMatchObject({ type: 'DESTROY', sport: 32848, unreplied: true, id: 2130802693 });
    // TCP, with its state word, through to its end.
    const tcp = events.filter((e) => e?.proto === 'tcp');
    expect(tcp.map((e) => e!.type)).toEqual(['NEW', 'UPDATE', 'UPDATE', 'UPDATE', 'UPDATE', 'UPDATE', 'DESTROY']);
    expect(tcp.every((e) => e!.replySrc === '127.0.0.2' && e!.id === 12057120)).toBe(true);
    // The closing lines are not events.
    expect(lines.filter((l) => l.startsWith('conntrack v')).map(parseCtEvent)).toEqual([undefined, undefined]);
    const six = parseCtEvent('[1.5]\t    [NEW] udp      17 30 src=fd00::5 dst=fd00:96::a sport=40000 dport=53 [UNREPLIED] src=fd00:1::7 dst=fd00::5 sport=53 dport=40000 id=9');
    expect(six).toMatchObject({ src: 'fd00::5', replySrc: 'fd00:1::7' });
    for (const bad of ['', '[NEW] udp 6 30 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=53 src=1.2.3.5 dst=1.2.3.4 sport=53 dport=1', '[NEW] udp 17 30 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=53', '[NEW] udp 17 30 src=1.2.3.4 dst=1.2.3.5 sport=70000 dport=53 src=1.2.3.5 dst=1.2.3.4 sport=53 dport=1', '[NEW] udp 17 30 src=1.2.3.4 src=1.2.3.5 sport=1 dport=53 src=x dst=1.2.3.4 sport=53 dport=1', 'garbage']) expect(parseCtEvent(bad), bad).toBeUndefined();
  });

  it('judges flows: replied once any event says so; unreplied when destroyed so or older than the timeout at the end; younger ones waiting; updates of flows begun before the run apart', () => {
    const t = new FlowTable();
    for (const l of lines) t.line(l, 0);
    t.line('[1796647899.0] [UPDATE] udp 17 30 src=10.244.1.6 dst=10.96.0.10 sport=1000 dport=53 src=127.0.0.2 dst=10.244.1.6 sport=53 dport=1000 id=5', 0);
    t.line('[1796647910.0] [NEW] udp 17 30 src=10.244.1.6 dst=10.96.0.10 sport=1001 dport=53 [UNREPLIED] src=127.0.0.3 dst=10.244.1.6 sport=53 dport=1001 id=6', 0);
    t.line('[1796647913.0] [NEW] udp 17 30 src=10.244.1.6 dst=10.96.0.10 sport=1002 dport=53 [UNREPLIED] src=127.0.0.3 dst=10.244.1.6 sport=53 dport=1002 id=7', 0);
    t.line('not an event', 0);
    const s = t.summary(1796647916.0, 5);
    expect({ flows: s.flows, replied: s.replied, unreplied: s.unreplied, waiting: s.waiting, before: s.before, unparsed: s.unparsed }).toEqual({ flows: 4, replied: 2, unreplied: 2, waiting: 1, before: 1, unparsed: 1 });
    expect(s.byEndpoint).toEqual([
      { endpoint: '127.0.0.2:53', via: ['10.96.0.10:53'], flows: 3, replied: 2, unreplied: 1 },
      { endpoint: '127.0.0.3:53', via: ['10.96.0.10:53'], flows: 1, replied: 0, unreplied: 1 },
    ]);
    expect(s.unrepliedFlows.map((f) => f.client)).toEqual(['10.244.1.5', '10.244.1.6']);
  });

  it('names an endpoint only on at least 3 unreplied flows beyond chance against the others; otherwise, beyond a 1% background', () => {
    const ct = (ends: Array<[string, number, number]>): Pick<DropsResult, 'conntrack' | 'seconds'> => ({
      seconds: 10,
      conntrack: {
        flows: ends.reduce((n, e) => n + e[1], 0), replied: 0, unreplied: ends.reduce((n, e) => n + e[2], 0), waiting: 0, before: 0, evicted: 0, unparsed: 0, unrepliedFlows: [], timeoutS: 5,
        byEndpoint: ends.map(([endpoint, flows, unreplied]) => ({ endpoint, via: ['10.96.0.10:53'], flows, replied: flows - unreplied, unreplied })),
      },
    });
    expect(conntrackFindings(ct([['a:53', 10, 2], ['b:53', 10, 0]]))).toEqual([]);
    expect(conntrackFindings(ct([['a:53', 10, 10], ['b:53', 10, 0]])).map((f) => [f.code, f.subject])).toEqual([['CONNTRACK_UNREPLIED_ENDPOINT', { kind: 'endpoint', address: 'a:53', service: null }]]);
    // Both endpoints losing alike: not one endpoint; far beyond the background: the path.
    expect(conntrackFindings(ct([['a:53', 20, 10], ['b:53', 20, 10]])).map((f) => f.code)).toEqual(['CONNTRACK_UNREPLIED']);
    // 3 of 1000: within what a healthy path leaves.
    expect(conntrackFindings(ct([['a:53', 1000, 3]]))).toEqual([]);
  });
});

const both = await kernelLabGate(TOOLS.dig, TOOLS.conntrack);
const conntrackTool = await netnsGate(TOOLS.dig, TOOLS.conntrack);
const newNetns = netnsPerTest();
let logs = '';
beforeAll(() => {
  logs = mkdtempSync(join(tmpdir(), 'k8sdiag-ctev-'));
});
afterAll(() => {
  if (logs) rmSync(logs, { recursive: true, force: true });
});

describe('conntrack events on a real kernel', () => {
  it.skipIf(!both.ok)(titled('a Service DNATed to two endpoints, one silent: its flows unreplied, as many as it logged, named; no drop in the kernel: lost beyond it', both), async () => {
    const ns = await newNetns('ctev');
    const inode = Number(/net:\[(\d+)\]/.exec((await ns.exec('readlink', ['/proc/self/ns/net'])).stdout)?.[1]);
    // A pod address and a route to the Service range, and kube-proxy's shape: one of two endpoints per new flow.
    for (const args of [['addr', 'add', '10.244.1.5/32', 'dev', 'lo'], ['route', 'add', '10.96.0.0/12', 'dev', 'lo', 'src', '10.244.1.5']]) expect((await ns.exec('ip', args)).exitCode).toBe(0);
    for (const rule of [
      ['-t', 'nat', '-A', 'OUTPUT', '-d', '10.96.0.10', '-p', 'udp', '--dport', '53', '-m', 'statistic', '--mode', 'nth', '--every', '2', '--packet', '0', '-j', 'DNAT', '--to-destination', '127.0.0.2:53'],
      ['-t', 'nat', '-A', 'OUTPUT', '-d', '10.96.0.10', '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', '127.0.0.3:53'],
    ]) expect((await ns.exec('iptables', rule)).exitCode).toBe(0);
    const good = await serveIn(ns.name, ['--host', '127.0.0.2', '--port', '53', '--duration', '60']);
    const silentLog = join(logs, 'silent.ndjson');
    // Received and never answered: a responder that loses every query (no kernel drop anywhere).
    const silent = await serveIn(ns.name, ['--host', '127.0.0.3', '--port', '53', '--fault', 'drop', '--log', silentLog, '--duration', '60']);
    try {
      // nsenter, not `ip netns exec` (which mounts a sysfs of its own, without tracefs): conntrack's events are this
      // namespace's, bpftrace sees every namespace's drops.
      const drops = await startListening(['drops', '--duration', '30', '--timeout', '1', '--json'], /watching skb:kfree_skb and conntrack events/, { netns: ns.name });
      // 16 lookups, each from a socket of its own: 16 flows, alternately DNATed (8 of 8 against 0 of 8 is p < 0.001).
      for (let k = 0; k < 16; k++) await ns.exec('dig', ['+tries=1', '+time=1', '@10.96.0.10', `q${k}.example`]);
      await new Promise((r) => setTimeout(r, 1500)); // past the 1 s timeout for the last one
      const { code, stdout } = await drops.stop();
      expect(code).toBe(130);
      const doc = JSON.parse(stdout) as DropsResult;
      expect(doc.sources).toEqual({ bpf: null, conntrack: null });
      const ct = doc.conntrack!;
      const silentQueries = readFileSync(silentLog, 'utf8').trim().split('\n').filter(Boolean).length;
      expect(silentQueries).toBeGreaterThan(0);
      const byEndpoint = Object.fromEntries(ct.byEndpoint.map((e) => [e.endpoint, e]));
      expect(byEndpoint['127.0.0.3:53']).toMatchObject({ flows: silentQueries, unreplied: silentQueries, replied: 0, via: ['10.96.0.10:53'] });
      expect(byEndpoint['127.0.0.2:53']).toMatchObject({ flows: 16 - silentQueries, unreplied: 0 });
      expect(ct.flows).toBe(16);
      expect(ct.unparsed).toBe(0);
      // What a person reads: the flows line and the endpoint's row.
      const human = renderDrops(makeStyle(false), doc);
      expect(human).toContain(`conntrack: 16 DNS flows, ${16 - silentQueries} replied, ${silentQueries} never replied within 1 s`);
      expect(human).toMatch(new RegExp(`│ 127\\.0\\.0\\.3:53 +│ - +│ 10\\.96\\.0\\.10:53 +│ +${silentQueries} │ +0 │ +${silentQueries} │`));
      const f = doc.findings.find((x) => x.code === 'CONNTRACK_UNREPLIED_ENDPOINT');
      expect(f?.subject).toEqual({ kind: 'endpoint', address: '127.0.0.3:53', service: null });
      // The kernel dropped none of them in this namespace: the queries were delivered, and lost beyond the kernel.
      expect(doc.byPlace.filter((p) => p.netns.includes(inode))).toEqual([]);
    } finally {
      good.kill('SIGTERM');
      silent.kill('SIGTERM');
    }
  }, 90_000);

  it.skipIf(!conntrackTool.ok)(titled('--source conntrack alone: refused in one line where conntrack cannot subscribe (no NET_ADMIN)', conntrackTool), async () => {
    const { run } = await import('../helpers/run.js');
    // setpriv drops every capability: netlink refuses the subscription.
    const r = await run(['drops', '--source', 'conntrack', '--duration', '1'], { prefix: ['setpriv', '--inh-caps=-all', '--bounding-set=-all', '--'] });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^k8sdiag: conntrack events: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
