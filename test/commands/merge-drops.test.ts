/**
 * merge of drops documents: the nodes of a fleet (deploy/daemonset-drops.yaml) in one view. conntrack's flows of two
 * nodes merge to what one FlowTable reading both nodes' event lines gives (the reference: the parser and judge over
 * the union, not a sum computed the way merge computes it); the places the kernel dropped packets add with the nodes
 * they were seen on; a broken document is skipped with its reason.
 */
import { describe, expect, it } from 'vitest';
import { FlowTable } from '../../src/kernel/ct-events.js';
import { readFixture, run } from '../helpers/run.js';

const lines = readFixture('kernel/conntrack-E-1.4.7.txt').split('\n');
const END = 1796647916;

/** Event lines for a node: the fixture's flows, and `lost` more never replied to 10.244.9.9:53. */
function nodeLines(lost: number, base: number): string[] {
  const more = Array.from({ length: lost }, (_, k) => `[1796647905.0] [NEW] udp 17 30 src=10.244.1.${base} dst=10.96.0.10 sport=${2000 + k} dport=53 [UNREPLIED] src=10.244.9.9 dst=10.244.1.${base} sport=53 dport=${2000 + k} id=${base * 1000 + k}`);
  return [...lines.map((l) => l.replace(/id=(\d+)/, (_, n: string) => `id=${n}${base}`)), ...more];
}

function doc(host: string, events: string[], byPlace: unknown[]): string {
  const t = new FlowTable();
  for (const l of events) t.line(l, END);
  const ct = t.summary(END, 5);
  return JSON.stringify({ schema: 'k8sdiag.drops/1', tool: '0.1.0', host, startedAt: '2026-12-07T10:00:00.000Z', durationMs: 60000, command: 'drops', source: 'x', sources: { bpf: null, conntrack: null }, ports: [53], seconds: 60, drops: 7, leftOut: 0, unparsed: 0, byPlace, events: [], counters: null, conntrack: { ...ct, timeoutS: 5 }, interrupted: false, findings: [] });
}

const place = (reason: string, endpoint: string, count: number) => ({ reason, location: reason === 'NO_SOCKET' ? '__udp4_lib_rcv' : 'nft_do_chain', endpoint, direction: 'query', transport: 'udp', count, netns: [1], pods: [] });

describe('merge of drops documents', () => {
  it("two nodes' flows merge to one table's reading of both; drops add by place, with their nodes; a broken one is skipped", async () => {
    const a = nodeLines(8, 11);
    const b = nodeLines(10, 12);
    const input = [
      doc('node-a', a, [place('NETFILTER_DROP', '10.244.9.9:53', 3), place('NO_SOCKET', '10.96.0.10:53', 2)]),
      doc('node-b', b, [place('NETFILTER_DROP', '10.244.9.9:53', 4)]),
      JSON.stringify({ schema: 'k8sdiag.drops/1', tool: '0.1.0', host: 'node-c', startedAt: '2026-12-07T10:00:00.000Z', durationMs: 1, command: 'drops', drops: 1, leftOut: 0, byPlace: 'nope', findings: [] }),
    ].join('\n');
    const r = await run(['merge', '--json', '-'], { input });
    expect(r.exitCode, r.stderr).toBeLessThan(2);
    const m = JSON.parse(r.stdout) as { groups: Array<{ schema: string; drops: { drops: number; traced: number; byPlace: Array<{ reason: string; endpoint: string; count: number; nodes: number }>; flows: { flows: number; replied: number; unreplied: number; byEndpoint: Array<{ endpoint: string; flows: number; replied: number; unreplied: number; nodes: number; p: number | null }> } } }>; skipped?: string[] };
    const g = m.groups.find((x) => x.schema === 'k8sdiag.drops/1')!;
    // The reference: one table reading both nodes' lines.
    const one = new FlowTable();
    for (const l of [...a, ...b]) one.line(l, END);
    const ref = one.summary(END, 5);
    expect({ flows: g.drops.flows.flows, replied: g.drops.flows.replied, unreplied: g.drops.flows.unreplied }).toEqual({ flows: ref.flows, replied: ref.replied, unreplied: ref.unreplied });
    const byRef = Object.fromEntries(ref.byEndpoint.map((e) => [e.endpoint, [e.flows, e.replied, e.unreplied]]));
    expect(Object.fromEntries(g.drops.flows.byEndpoint.map((e) => [e.endpoint, [e.flows, e.replied, e.unreplied]]))).toEqual(byRef);
    // Worst first, and the silent endpoint beyond chance against the others.
    expect(g.drops.flows.byEndpoint[0]).toMatchObject({ endpoint: '10.244.9.9:53', unreplied: 18, nodes: 2 });
    expect(g.drops.flows.byEndpoint[0]!.p).toBeLessThan(0.01);
    expect(g.drops.byPlace.map((p) => [p.reason, p.endpoint, p.count, p.nodes])).toEqual([
      ['NETFILTER_DROP', '10.244.9.9:53', 7, 2],
      ['NO_SOCKET', '10.96.0.10:53', 2, 1],
    ]);
    expect(g.drops.drops).toBe(14);
    expect(g.drops.traced).toBe(2);
    expect(JSON.stringify(m)).toMatch(/node-c.*byPlace is not a list/);
    // And as a person reads it.
    const h = await run(['merge', '--no-color', '-'], { input });
    expect(h.stdout).toContain('kernel drops: 14 DNS packets on 2 traced runs');
    expect(h.stdout).toMatch(/conntrack: \d+ DNS flows on 2 runs, \d+ replied, 20 never replied/);
  });
});
