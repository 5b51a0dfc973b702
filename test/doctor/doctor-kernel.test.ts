/**
 * doctor --kernel in the namespace lab: the kernel's drops and conntrack's events during the probes, and the verdict's
 * line on whether they corroborate the cause. The race stand-in is a firewall rule on the node (the second packet of a
 * DNATed flow dropped by its verdict), so the kernel shows what it is: drops at nft_do_chain with insert_failed still,
 * which contradicts the race the probes' pattern names. An endpoint that loses queries itself (received, never
 * answered) shows no drop on the node: lost beyond it, and the line says so.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/run.js';
import { kernelLabGate } from '../helpers/netns.js';
import { ENDPOINTS, scene } from '../helpers/lab.js';
import type { Scene } from '../helpers/lab.js';
import { NO_SEARCH } from '../helpers/doctor-lab.js';
import type { Doc } from '../helpers/doctor-lab.js';
import { TOOLS, titled } from '../helpers/tools.js';
import type { KernelSeen } from '../../src/doctor/kernel.js';

const gate = await kernelLabGate(TOOLS.conntrack);

/** doctor --kernel from the pod: nsenter keeps the host's /sys (tracefs); the resolv.conf on stdin. */
async function doctorKernel(s: Scene, budget: number): Promise<Doc & { kernel: KernelSeen | null; steps: Array<{ step: string; ok: boolean; note: string }> }> {
  const p = spawn('nsenter', [`--net=/run/netns/${s.pod.name}`, process.execPath, BIN, 'doctor', '--json', '--kernel', '--resolv', '-', '--budget', String(budget), '--endpoints', ...ENDPOINTS], { stdio: ['pipe', 'pipe', 'pipe'] });
  p.stdin.end(NO_SEARCH);
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number>((r) => p.on('exit', (c) => r(c ?? -1)));
  if (code === 2 || out.trim() === '') throw new Error(`doctor: exit ${code}: ${err}`);
  return JSON.parse(out) as Doc & { kernel: KernelSeen | null; steps: Array<{ step: string; ok: boolean; note: string }> };
}

describe.skipIf(!gate.ok)(titled('doctor --kernel in the namespace lab', gate), () => {
  it("the race stand-in: the kernel shows a rule's verdict at nft_do_chain, insert_failed still, and the verdict says it contradicts the race", async () => {
    const s = await scene({ resolv: NO_SEARCH, race: true, faultA: ['delay:40@type=A'], faultB: ['delay:40@type=A'] });
    const doc = await doctorKernel(s, 8);
    const k = doc.kernel!;
    expect(k.sources).toEqual({ bpf: null, conntrack: null });
    // bpftrace sees every namespace, the other tests' too: this scene's node is where its rule drops.
    const node = Number(/net:\[(\d+)\]/.exec((await s.node.exec('readlink', ['/proc/self/ns/net'])).stdout)?.[1]);
    const rule = k.byPlace.filter((p) => p.reason === 'NETFILTER_DROP' && p.location === 'nft_do_chain' && p.netns.includes(node));
    expect(rule.reduce((n, p) => n + p.count, 0)).toBeGreaterThanOrEqual(3);
    for (const p of rule) expect(ENDPOINTS.map((e) => `${e}:53`)).toContain(p.endpoint);
    expect(doc.findings.map((f) => f.code)).toContain('CONNTRACK_RACE');
    expect(doc.verdict.find((l) => l.startsWith('Kernel evidence'))).toMatch(/^Kernel evidence contradicts the race: the lost packets were dropped by a firewall rule's verdict \(\d+ at nft_do_chain \(NETFILTER_DROP\) toward 198\.18\.[23]\.2:53/);
    expect(doc.steps.find((x) => x.step === 'kernel')?.ok).toBe(true);
  }, 180_000);

  it('an endpoint that never answers a third of its queries: no drop on this node, and the line says the loss is beyond it', async () => {
    const s = await scene({ resolv: NO_SEARCH, faultA: ['drop@fraction=0.33'], faultB: ['drop@fraction=0.33'] });
    const doc = await doctorKernel(s, 8);
    const line = doc.verdict.find((l) => l.startsWith('Kernel evidence'));
    // bpftrace sees every namespace, the other lab tests' too (the same addresses): this scene's own are clean.
    const mine = new Set(await Promise.all([s.node, s.pod, ...s.endpoints].map(async (n) => Number(/net:\[(\d+)\]/.exec((await n.exec('readlink', ['/proc/self/ns/net'])).stdout)?.[1]))));
    const CLOSED = ['QUEUE_PURGE', 'SOCKET_CLOSE', 'TCP_CLOSE']; // doctor's own sockets closed with answers queued
    expect(doc.kernel!.byPlace.filter((p) => p.netns.some((n) => mine.has(n)) && !CLOSED.includes(p.reason))).toEqual([]);
    // The line is judged where no other test's drops reached the same addresses meanwhile.
    const foreign = doc.kernel!.byPlace.filter((p) => !CLOSED.includes(p.reason) && [...ENDPOINTS.map((e) => `${e}:53`), '198.18.0.10:53'].includes(p.endpoint));
    if (foreign.length > 0) return;
    expect(line).toMatch(/no DNS packet was dropped on this node during the probes/);
    // Where the probes named a cause (the servers' loss), the line places it beyond the node.
    if (doc.verdict.some((l) => /SERVER_LOSS|ENDPOINT_LOSS/.test(l))) expect(line).toMatch(/lost beyond it/);
  }, 180_000);
});

describe("the verdict's kernel line", () => {
  const race = [{ code: 'CONNTRACK_RACE', severity: 'critical', subject: { kind: 'nameserver' }, message: '', evidence: {} }] as unknown as Parameters<typeof import('../../src/doctor/kernel.js').kernelLine>[0];
  const place = (reason: string, location: string, count: number) => ({ reason, location, endpoint: '10.0.3.7:53', direction: 'query' as const, transport: 'udp' as const, count, netns: [1], pods: [] });
  const seen = (byPlace: ReturnType<typeof place>[], insertFailed: number): KernelSeen => ({ sources: { bpf: null, conntrack: null }, seconds: 10, drops: byPlace.reduce((n, p) => n + p.count, 0), byPlace, counters: { insertFailed, drop: 0, earlyDrop: 0 }, flows: { flows: 20, replied: 20, unreplied: 0, byEndpoint: [] } });

  it('the race seen: netfilter drops outside a rule with insert_failed moving; a rule, or nothing on the node, contradicts it; a closed socket is not a loss', async () => {
    const { kernelLine } = await import('../../src/doctor/kernel.js');
    // Drops toward servers the probes did not ask are not theirs.
    expect(kernelLine(race, seen([place('NETFILTER_DROP', 'nft_do_chain', 5)], 0), new Set(['10.96.0.10:53']))).toMatch(/^Kernel evidence contradicts the race: no DNS packet was dropped on this node/);
    expect(kernelLine(race, seen([place('NETFILTER_DROP', 'nf_hook_slow', 5)], 5))).toBe("Kernel evidence shows the race: 5 at nf_hook_slow (NETFILTER_DROP) toward 10.0.3.7:53, insert_failed +5: conntrack's confirm step refused the entries.");
    expect(kernelLine(race, seen([place('NETFILTER_DROP', 'nft_do_chain', 5)], 0))).toMatch(/^Kernel evidence contradicts the race: the lost packets were dropped by a firewall rule's verdict/);
    const withRule = { ...place('NETFILTER_DROP', 'nft_do_chain', 5), rules: [{ table: 'filter', chain: 'FORWARD', rule: '-A FORWARD -p udp -m udp --dport 53 -j DROP' }] };
    expect(kernelLine(race, seen([withRule], 0))).toMatch(/: the rule, by what it names: filter FORWARD: -A FORWARD -p udp -m udp --dport 53 -j DROP, not conntrack's insert\.$/);
    expect(kernelLine(race, seen([place('QUEUE_PURGE', 'sk_stream_kill_queues', 9)], 0))).toMatch(/^Kernel evidence contradicts the race: no DNS packet was dropped on this node during the probes \(0\), insert_failed \+0: the loss is beyond this node/);
    expect(kernelLine([], seen([], 0))).toBe('Kernel evidence agrees: no DNS packet was dropped on this node during the probes.');
  });
});
