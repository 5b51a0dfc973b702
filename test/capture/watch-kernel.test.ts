/**
 * `watch --kernel` on the node of the namespace lab (../helpers/lab.ts), live: each stalled query joined to the
 * kernel's evidence. Under the race stand-in (the node's rule drops the second packet of a DNATed flow), every
 * lookup's lost AAAA is a drop by netfilter after DNAT toward the endpoint it was sent to, as many as the endpoints'
 * logs are missing; with one endpoint black-holed by a rule in its own namespace, the drops are in that namespace only;
 * with one endpoint that receives queries and answers a third of them never, there is no drop on the node: lost
 * beyond it, and conntrack saw those flows never replied.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOLS, titled } from '../helpers/tools.js';
import { kernelLabGate } from '../helpers/netns.js';
import { startListening } from '../helpers/listening.js';
import { ENDPOINTS, scene } from '../helpers/lab.js';
import type { Scene } from '../helpers/lab.js';
import type { WatchResult } from '../../src/commands/watch.js';
import { renderWatch } from '../../src/render/watch.js';
import { makeStyle } from '../../src/render/style.js';

const gate = await kernelLabGate(TOOLS.tcpdump, TOOLS.conntrack, TOOLS.dig);
const NO_SEARCH = 'nameserver 198.18.0.10\noptions ndots:1 timeout:1 attempts:2\n';
let logs = '';
beforeAll(() => {
  logs = mkdtempSync(join(tmpdir(), 'k8sdiag-watchkernel-'));
});
afterAll(() => (logs === '' ? undefined : rmSync(logs, { recursive: true, force: true })));

/** `watch --kernel` in the node's network namespace (nsenter: the host's /sys, so tracefs), once both listen. */
async function watchKernel(s: Scene, timeoutS: number): Promise<{ stop: () => Promise<{ doc: WatchResult; code: number; stderr: string }> }> {
  const w = await startListening(['watch', '-i', 'any', '--kernel', '--json', '--timeout', String(timeoutS)], /kernel evidence from skb:kfree_skb and conntrack events[\s\S]*tcpdump listening on/, { netns: s.node.name });
  return {
    stop: async () => {
      const { code, stdout, stderr } = await w.stop('SIGTERM');
      if (stdout.trim() === '') throw new Error(`watch printed nothing: exit ${code}: ${stderr}`);
      return { doc: JSON.parse(stdout) as WatchResult, code, stderr };
    },
  };
}

const logOf = (file: string): Array<{ action: string; type: string }> => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { action: string; type: string }) : []);
const inode = async (s: Scene, which: 'node' | 0 | 1): Promise<number> => Number(/net:\[(\d+)\]/.exec((await (which === 'node' ? s.node : s.endpoints[which]!).exec('readlink', ['/proc/self/ns/net'])).stdout)?.[1]);

describe.skipIf(!gate.ok)(titled('watch --kernel in the namespace lab', gate), () => {
  it("the race stand-in: each lookup's lost AAAA dropped by netfilter on the node after DNAT to its endpoint, as many as the endpoints' logs miss", async () => {
    const [la, lb] = [join(logs, 'race-a.ndjson'), join(logs, 'race-b.ndjson')];
    const s = await scene({ resolv: NO_SEARCH, race: true, faultA: ['delay:250@type=A'], faultB: ['delay:250@type=A'], logA: la, logB: lb });
    const node = await inode(s, 'node');
    const w = await watchKernel(s, 2);
    const lookups = 6;
    for (let k = 0; k < lookups; k++) expect((await s.pod.exec('getent', ['ahosts', 'google.com'], { timeout: 30_000 })).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    const { doc, code } = await w.stop();
    expect(code).toBe(143);
    expect(doc.answeredAfterResend).toBe(lookups);
    const k = doc.kernel!;
    expect(k.sources).toEqual({ bpf: null, conntrack: null });
    // Each AAAA was sent twice and reached an endpoint once: the endpoints miss one a lookup, and so many drops.
    const aaaaSeen = [...logOf(la), ...logOf(lb)].filter((q) => q.type === 'AAAA').length;
    expect(aaaaSeen).toBe(lookups);
    expect(k.joined).toBe(lookups);
    expect(k.dropped).toBe(lookups);
    // Each in this scene's node (other tests' scenes use the same addresses, and bpftrace sees them all).
    expect(k.byPlace.filter((p) => p.netns.includes(node)).reduce((n, p) => n + p.count, 0)).toBe(lookups);
    for (const p of k.byPlace.filter((x) => x.netns.includes(node))) {
      expect([p.reason, p.location, p.direction]).toEqual(['NETFILTER_DROP', 'nft_do_chain', 'query']);
      expect(ENDPOINTS.map((e) => `${e}:53`)).toContain(p.endpoint);
    }
    expect(k.examples[0]!.evidence).toMatch(/^the query was dropped on this node at nft_do_chain \(NETFILTER_DROP\) after DNAT to 198\.18\.[23]\.2:53/);
    expect(doc.findings.find((f) => f.code === 'STALLS_DROPPED_ON_NODE')?.severity).toBe('critical');
    expect(doc.findings.map((f) => f.code)).not.toContain('STALLS_BEYOND_NODE');
  }, 120_000);

  it('one endpoint black-holed by a rule in its own namespace: the drops are there, in that namespace only', async () => {
    const s = await scene({ resolv: NO_SEARCH, blackholeB: true });
    const b = await inode(s, 1);
    const w = await watchKernel(s, 1);
    for (let k = 0; k < 12; k++) await s.pod.exec('dig', ['+tries=1', '+time=1', '@198.18.0.10', `q${k}.example`]);
    await new Promise((r) => setTimeout(r, 1500));
    const { doc } = await w.stop();
    const k = doc.kernel!;
    expect(doc.unanswered).toBeGreaterThan(0);
    expect(k.dropped).toBe(doc.unanswered);
    expect(k.byPlace.map((p) => [p.reason, p.endpoint, p.netns])).toEqual([['NETFILTER_DROP', `${ENDPOINTS[1]}:53`, [b]]]);
  }, 120_000);

  it('an endpoint that receives queries and answers none: no drop on the node, lost beyond it; conntrack saw their flows never replied', async () => {
    const lb = join(logs, 'beyond-b.ndjson');
    const s = await scene({ resolv: NO_SEARCH, faultB: ['drop'], logB: lb });
    const w = await watchKernel(s, 1);
    // 20 flows, each DNATed to either endpoint at random: fewer than 3 to the silent one in 1 run of 5,000.
    for (let k = 0; k < 20; k++) await s.pod.exec('dig', ['+tries=1', '+time=1', '@198.18.0.10', `q${k}.example`]);
    await new Promise((r) => setTimeout(r, 1500));
    const { doc } = await w.stop();
    const k = doc.kernel!;
    const dropped = logOf(lb).filter((q) => q.action === 'drop').length;
    expect(dropped).toBeGreaterThanOrEqual(MIN_LOST);
    expect(doc.unanswered).toBe(dropped);
    expect(k.dropped).toBe(0);
    expect(k.beyond).toBe(dropped);
    expect(k.unrepliedFlows).toBe(dropped);
    expect(k.beyondByEndpoint).toEqual({ [`${ENDPOINTS[1]}:53`]: dropped });
    expect(k.examples[0]!.evidence).toBe(`no drop on this node: lost beyond it (conntrack: DNATed to ${ENDPOINTS[1]}:53, never replied)`);
    // What a person reads: the evidence line, and an example stall with its evidence in words.
    const human = renderWatch(makeStyle(false), doc);
    expect(human).toContain(`kernel evidence (the kernel's drops and conntrack's events): ${k.joined} stalled queries: 0 dropped on this node, ${dropped} lost beyond it, 0 without evidence`);
    expect(human).toMatch(/ q\d+\.example A: no drop on this node: lost beyond it \(conntrack: DNATed to 198\.18\.3\.2:53, never replied\)/);
    expect(doc.findings.map((f) => f.code)).toContain('STALLS_BEYOND_NODE');
  }, 120_000);
});

/** What STALLS_BEYOND_NODE needs. */
const MIN_LOST = 3;
