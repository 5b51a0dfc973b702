/**
 * Resolver emulation checked by what a real server on loopback saw: names in
 * order, query counts, source ports, and glibc's adaptive switch.
 */
import { describe, expect, it } from 'vitest';
import type { ResolverEmulationOptions } from '../../src/engine/resolver.js';
import { parseFault } from '../../src/dns/responder.js';
import type { Responder } from '../../src/dns/responder.js';
import { startResponder } from '../helpers/responders.js';
import { emulateAt } from '../helpers/emulate.js';
import type { SeenQuery } from '../../src/dns/responder.js';
import { readFixture } from '../helpers/run.js';

const serve = (faults: string[] = [], zones = ['google.com']): Promise<Responder> => startResponder({ faults: faults.map(parseFault), zones });

const EKS = readFixture('resolv/kubelet-eks.conf');

/** One lookup against responders on loopback, its accounting checked. */
const emulate = (servers: Responder[], conf: string, o: Partial<ResolverEmulationOptions> = {}, libc: 'glibc' | 'musl' = 'glibc') =>
  emulateAt(servers.map((s) => ({ host: '127.0.0.1', port: s.udpPort })), conf, libc, o);

const names = (seen: SeenQuery[]) => seen.map((q) => `${q.name} ${q.type}`);
/** Source ports of each candidate's queries, in order. */
const portsByName = (seen: SeenQuery[]) => {
  const m = new Map<string, Set<number>>();
  for (const q of seen) m.set(q.name, (m.get(q.name) ?? new Set()).add(q.port));
  return [...m.values()].map((s) => s.size);
};

describe('glibc emulation', () => {
  it('a ClusterFirst lookup of google.com: 5 names in order, 10 queries, A+AAAA from one source port per name', async () => {
    const r = await serve();
    const res = await emulate([r], EKS);
    expect(names(r.seen)).toEqual([
      'google.com.kube-system.svc.cluster.local A', 'google.com.kube-system.svc.cluster.local AAAA',
      'google.com.svc.cluster.local A', 'google.com.svc.cluster.local AAAA',
      'google.com.cluster.local A', 'google.com.cluster.local AAAA',
      'google.com.us-west-2.compute.internal A', 'google.com.us-west-2.compute.internal AAAA',
      'google.com A', 'google.com AAAA',
    ]);
    // A and AAAA of one name share a source port (sendmmsg); every name gets a fresh socket.
    expect(portsByName(r.seen)).toEqual([1, 1, 1, 1, 1]);
    expect(new Set(r.seen.map((q) => q.port)).size).toBe(5);
    // Sent back to back: the AAAA leaves before the A's answer could have been used.
    expect(res.engine).toMatchObject({ sent: 10, answered: 10, timeouts: 0 });
    expect(res.engine.rcodes).toEqual({ NXDOMAIN: 8, NOERROR: 2 });
    expect(res.lookups).toMatchObject({ lookups: 1, outcomes: { answer: 1 } });
  });

  it('single-request-reopen: the AAAA of each name leaves from a different socket than the A', async () => {
    const r = await serve();
    await emulate([r], `${EKS}options single-request-reopen\n`);
    expect(portsByName(r.seen)).toEqual([2, 2, 2, 2, 2]);
    expect(new Set(r.seen.map((q) => q.port)).size).toBe(10);
  });

  it('single-request: one socket, the AAAA only after the A was answered', async () => {
    const r = await serve(['delay:50@type=A']);
    await emulate([r], EKS, { singleRequest: true });
    expect(portsByName(r.seen)).toEqual([1, 1, 1, 1, 1]);
    for (let i = 0; i < r.seen.length; i += 2) {
      expect(r.seen[i]!.type).toBe('A');
      expect(r.seen[i + 1]!.t - r.seen[i]!.t).toBeGreaterThanOrEqual(45);
    }
  });

  it('use-vc: the queries go over TCP, both on one connection', async () => {
    const r = await serve();
    const res = await emulate([r], `${EKS}options use-vc\n`);
    expect(res.engine).toMatchObject({ sent: 10, answered: 10 });
    expect(r.seen.every((q) => q.proto === 'tcp')).toBe(true);
    expect(portsByName(r.seen)).toEqual([1, 1, 1, 1, 1]);
  });

  it('no-aaaa sends A only', async () => {
    const r = await serve();
    const res = await emulate([r], `${EKS}options no-aaaa\n`);
    expect(res.engine.sent).toBe(5);
    expect(r.seen.every((q) => q.type === 'A')).toBe(true);
  });

  it('a lost AAAA: glibc waits its timeout, switches to single-request and resends on the same socket', async () => {
    const r = await serve(['drop@type=AAAA,count=1']);
    const res = await emulate([r], `${EKS}options timeout:1\n`);
    expect(res.lookups.modeSwitches).toEqual({ singleRequest: 1, singleRequestReopen: 0 });
    expect(res.engine).toMatchObject({ sent: 12, answered: 11, timeouts: 1 });
    // The first name: A+AAAA, then A and AAAA again from the same port.
    const first = r.seen.filter((q) => q.name === 'google.com.kube-system.svc.cluster.local');
    expect(first.map((q) => q.type)).toEqual(['A', 'AAAA', 'A', 'AAAA']);
    expect(new Set(first.map((q) => q.port)).size).toBe(1);
    expect(first[2]!.t - first[0]!.t).toBeGreaterThanOrEqual(950);
    // One stall for the whole lookup, not one per name.
    expect(res.lookups.lookupLatencyMs.max).toBeGreaterThanOrEqual(950);
    expect(res.lookups.lookupLatencyMs.max, 'one timeout of 1 s, not two').toBeLessThan(2 * 1000);
    expect(res.lookups.stalls).toEqual({ over1s: 1, over5s: 0 });
  });

  it('a second lost AAAA in single-request mode switches to single-request-reopen', async () => {
    const r = await serve(['drop@type=AAAA,count=2']);
    const res = await emulate([r], `${EKS}options timeout:1\n`);
    expect(res.lookups.modeSwitches).toEqual({ singleRequest: 1, singleRequestReopen: 1 });
    expect(res.engine.timeouts).toBe(2);
    const first = r.seen.filter((q) => q.name === 'google.com.kube-system.svc.cluster.local');
    expect(first.map((q) => q.type)).toEqual(['A', 'AAAA', 'A', 'AAAA', 'A', 'AAAA']);
    // After the reopen switch the last AAAA leaves from a new socket.
    expect(first[5]!.port).not.toBe(first[4]!.port);
  });

  it('the switch lasts one lookup by default (fresh process) and sticks with --long-lived', async () => {
    const fresh = await serve(['drop@type=AAAA,count=1']);
    const a = await emulate([fresh], `${EKS}options timeout:1\n`, { total: 2 });
    const second = fresh.seen.slice(12);
    expect(second).toHaveLength(10);
    expect(a.lookups.modeSwitches.singleRequest).toBe(1);

    const long = await serve(['drop@type=AAAA,count=1', 'delay:30@type=A']);
    await emulate([long], `${EKS}options timeout:1\n`, { total: 2, longLived: true });
    const next = long.seen.slice(12);
    expect(next).toHaveLength(10);
    // Still in single-request mode: each AAAA leaves only after its A was answered.
    for (let i = 0; i < next.length; i += 2) expect(next[i + 1]!.t - next[i]!.t).toBeGreaterThanOrEqual(25);
  });

  it('a timeout on a search name ends the search; glibc still tries the name as written', async () => {
    const r = await serve(['drop@type=A,count=1', 'drop@type=AAAA,count=1']);
    const res = await emulate([r], `${EKS}options timeout:1 attempts:1\n`);
    expect(names(r.seen)).toEqual([
      'google.com.kube-system.svc.cluster.local A', 'google.com.kube-system.svc.cluster.local AAAA',
      'google.com A', 'google.com AAAA',
    ]);
    expect(res.lookups.outcomes).toEqual({ answer: 1 });
  });

  it('a dead server: every query times out after attempts x timeout, counted exactly', async () => {
    const r = await serve(['drop']);
    const res = await emulate([r], 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n', { names: ['x.google.com.'] });
    expect(res.engine).toMatchObject({ sent: 4, answered: 0, timeouts: 4 });
    expect(res.lookups.outcomes).toEqual({ timeout: 1 });
  });
});

describe('musl emulation', () => {
  it('sends every query to all nameservers at once, from one socket', async () => {
    const a = await serve();
    const b = await serve();
    const res = await emulate([a, b], EKS, {}, 'musl');
    expect(names(a.seen)).toEqual(names(b.seen));
    expect(names(a.seen)).toHaveLength(10);
    expect(portsByName(a.seen)).toEqual([1, 1, 1, 1, 1]);
    expect(res.lookups).toMatchObject({ libc: 'musl', outcomes: { answer: 1 } });
    // 20 datagrams: the first reply for each query wins, the other copy is answered too or cancelled
    expect(res.engine.sent).toBe(20);
  });

  it('dots >= ndots: the absolute name only, no search', async () => {
    const r = await serve();
    await emulate([r], 'search a.test b.test\noptions ndots:1\nnameserver 127.0.0.1\n', {}, 'musl');
    expect(names(r.seen)).toEqual(['google.com A', 'google.com AAAA']);
  });

  it('SERVFAIL stops a musl lookup (no further names)', async () => {
    const r = await serve(['servfail@count=4'], ['google.com']);
    const res = await emulate([r], EKS, {}, 'musl');
    expect(res.lookups.outcomes).toEqual({ servfail: 1 });
    expect(new Set(r.seen.map((q) => q.name)).size).toBe(1);
  });
});
