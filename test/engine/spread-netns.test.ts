/**
 * Through a Service IP, conntrack pins each UDP source port to the endpoint its
 * first packet was DNATed to. A network namespace with a kube-proxy-shaped
 * two-endpoint DNAT (-m statistic --mode random --probability 0.5) and two
 * responders shows the engine spreads its queries over both, as many clients
 * do, and that one socket would measure one endpoint.
 */
import { describe, expect, it } from 'vitest';
import { canUseNetns, netnsPerTest } from '../helpers/netns.js';

const usable = await canUseNetns();
const newNetns = netnsPerTest();

const RULES = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-SPREADTEST000001 - [0:0]
:KUBE-SEP-SPREAD1 - [0:0]
:KUBE-SEP-SPREAD2 - [0:0]
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp -p udp -d 198.18.0.10 --dport 53 -j KUBE-SVC-SPREADTEST000001
-A KUBE-SVC-SPREADTEST000001 -m comment --comment "kube-system/kube-dns:dns -> 127.0.0.1:5301" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SPREAD1
-A KUBE-SVC-SPREADTEST000001 -m comment --comment "kube-system/kube-dns:dns -> 127.0.0.1:5302" -j KUBE-SEP-SPREAD2
-A KUBE-SEP-SPREAD1 -m udp -p udp -j DNAT --to-destination 127.0.0.1:5301
-A KUBE-SEP-SPREAD2 -m udp -p udp -j DNAT --to-destination 127.0.0.1:5302
COMMIT
`;

/** Runs inside the namespace: two responders (the second drops every 3rd query), then the engine, repeatedly. */
const script = (runs: Array<{ sockets?: number; total: number }>): string => `
const { Responder, parseFault } = await import(${JSON.stringify(new URL('../../dist/dns/responder.js', import.meta.url).href)});
const { runEngine } = await import(${JSON.stringify(new URL('../../dist/engine/engine.js', import.meta.url).href)});
const out = [];
for (const run of ${JSON.stringify(runs)}) {
  const a = new Responder({ port: 5301, tcp: false });
  const b = new Responder({ port: 5302, tcp: false, faults: [parseFault('drop@every=3')] });
  await a.start();
  await b.start();
  const res = await runEngine({ server: '198.18.0.10', port: 53, queries: [{ name: 'x.test', type: 'A' }], concurrency: 50,
    total: run.total, timeoutMs: 300, slowMs: 5000, ...(run.sockets ? { sockets: run.sockets } : {}) });
  out.push({ a: a.stats.queries, b: b.stats.queries, timeouts: res.timeouts, sent: res.sent, sourcePorts: res.sourcePorts });
  await a.stop();
  await b.stop();
}
console.log(JSON.stringify(out));
`;

describe.skipIf(!usable)('queries spread over source ports through a Service DNAT', () => {
  it('default: each endpoint gets about half of the queries, run after run; the dropping endpoint costs about 1 in 6', async () => {
    const n = await newNetns('spread');
    expect((await n.exec('ip', ['addr', 'add', '198.18.0.10/32', 'dev', 'lo'])).exitCode).toBe(0);
    const load = await n.exec('iptables-restore', [], { input: RULES });
    expect(load.exitCode, load.stderr).toBe(0);
    const r = await n.exec(process.execPath, ['--input-type=module', '-e', script([{ total: 600 }, { total: 600 }, { total: 600 }, { sockets: 1, total: 300 }])], { timeout: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const runs = JSON.parse(r.stdout) as Array<{ a: number; b: number; timeouts: number; sent: number; sourcePorts: number }>;
    const spread = runs.slice(0, 3);
    for (const run of spread) {
      expect(run.sourcePorts).toBe(256);
      expect(run.a + run.b).toBe(600);
      // 256 flows each pinned at random: the share of one endpoint has a standard deviation of 3.1%.
      expect(Math.abs(run.a / 600 - 0.5), JSON.stringify(run)).toBeLessThan(0.125);
      // One in three of the second endpoint's half: about 100, never the 0 or 200 of a single flow.
      expect(run.timeouts).toBe(Math.floor(run.b / 3));
      expect(run.timeouts).toBeGreaterThan(40);
      expect(run.timeouts).toBeLessThan(160);
    }
    const meanShare = spread.reduce((s, x) => s + x.a / 600, 0) / spread.length;
    expect(Math.abs(meanShare - 0.5)).toBeLessThan(0.075);
    // One socket: one flow, one endpoint, all or nothing.
    const one = runs[3]!;
    expect(one.sourcePorts).toBe(1);
    expect([one.a, one.b].sort((x, y) => x - y)).toEqual([0, 300]);
  }, 60_000);
});
