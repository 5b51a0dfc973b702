/**
 * `watch --kernel`: each stalled query (unanswered, or answered only after a resend) given the kernel's evidence of
 * what happened to it, by its client address and port and the time it waited: a drop the kernel reported on this node
 * (skb:kfree_skb through bpftrace: where and why, and toward which endpoint after DNAT), or conntrack's word on its flow
 * (the endpoint it was DNATed to, never replied), or, where the kernel's drops were traced and none matched, lost beyond
 * this node. Bounded: the first MAX_JOINED stalls are joined, and the drops and flows kept for them are capped.
 */
import { finding } from '../findings.js';
import type { Finding } from '../findings.js';
import { byCause, CLOSE_REASONS, remedyFor } from '../kernel/drops.js';
import type { DropEvent } from '../kernel/drops.js';
import type { Flow } from '../kernel/ct-events.js';
import type { StallEvent } from './match-types.js';

export const MAX_JOINED = 10_000;
const MAX_DROPS = 100_000;
const MAX_FLOWS = 200_000;
/** A drop within this of a query's sends (before its first, after its last wait) is taken as its. */
const SLACK_US = 200_000;
const EXAMPLES = 50;
const MIN = 3;

interface Drop {
  us: number;
  reason: string;
  location: string;
  /** Where the packet was going when it died: the endpoint after DNAT, or the client for an answer. */
  to: string;
  netns: number;
  direction: 'query' | 'answer';
}

export interface KernelPlace {
  reason: string;
  location: string;
  /** Where the dropped packets were going: a query's endpoint (after DNAT, where it was translated), an answer's client. */
  endpoint: string;
  direction: 'query' | 'answer';
  count: number;
  /** The network namespaces (inodes) they died in. */
  netns: number[];
}

export interface KernelEvidence {
  /** Each source: null where it ran, else why it did not. */
  sources: { bpf: string | null; conntrack: string | null };
  /** Stalled queries seen (unanswered, or answered only after a resend), and of them those joined. */
  stalls: number;
  joined: number;
  /** Joined stalls with a drop on this node; with none while the kernel's drops were traced (lost beyond it); neither known. */
  dropped: number;
  beyond: number;
  unknown: number;
  /** Of the joined stalls, those whose conntrack flow was never replied. */
  unrepliedFlows: number;
  byPlace: KernelPlace[];
  /** Stalls lost beyond this node, by the endpoint conntrack says their flow went to (where it said). */
  beyondByEndpoint: Record<string, number>;
  /** DNS packets the kernel dropped in all while watch ran, stalled queries' or not. */
  drops: number;
  examples: Array<{ time: string; client: string; clientPort: number; name: string; type: string; outcome: StallEvent['outcome']; evidence: string }>;
}

const hostPort = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

export class KernelJoin {
  private readonly stalls: StallEvent[] = [];
  private stallsSeen = 0;
  private readonly drops = new Map<string, Drop[]>();
  private dropsKept = 0;
  private dropsSeen = 0;
  private readonly flows = new Map<string, Flow[]>();
  private flowsKept = 0;

  constructor(private readonly ports: readonly number[]) {}

  stall(e: StallEvent): void {
    if (e.outcome === 'slow') return;
    this.stallsSeen++;
    if (this.stalls.length < MAX_JOINED) this.stalls.push(e);
  }

  drop(e: DropEvent & { epochUs: number }): void {
    this.dropsSeen++;
    if (this.dropsKept >= MAX_DROPS) return;
    const query = this.ports.includes(e.dport);
    // Keyed by the client's side: a query's source, an answer's destination.
    const key = query ? `${e.src}|${e.sport}` : `${e.dst}|${e.dport}`;
    const d: Drop = { us: e.epochUs, reason: e.reason, location: e.location, to: hostPort(e.dst, e.dport), netns: e.netns, direction: query ? 'query' : 'answer' };
    const list = this.drops.get(key);
    if (list === undefined) this.drops.set(key, [d]);
    else list.push(d);
    this.dropsKept++;
  }

  flow(f: Flow): void {
    if (this.flowsKept >= MAX_FLOWS) return;
    const key = `${f.client}|${f.clientPort}`;
    const list = this.flows.get(key);
    if (list === undefined) this.flows.set(key, [f]);
    else list.push(f);
    this.flowsKept++;
  }

  result(sources: KernelEvidence['sources']): KernelEvidence {
    const bpf = sources.bpf === null;
    const places = new Map<string, KernelPlace>();
    const out: KernelEvidence = { sources, stalls: this.stallsSeen, joined: this.stalls.length, dropped: 0, beyond: 0, unknown: 0, unrepliedFlows: 0, byPlace: [], beyondByEndpoint: {}, drops: this.dropsSeen, examples: [] };
    for (const s of this.stalls) {
      const key = `${s.client}|${s.clientPort}`;
      const from = s.firstSentUs - SLACK_US;
      const to = s.firstSentUs + s.waitedMs * 1000 + SLACK_US;
      // A socket closed with its answer unread is the client giving up, not where the query died. Of the rest in its
      // window, the nearest to its first send (a port used again later is another query's).
      let drop: Drop | undefined;
      for (const d of this.drops.get(key) ?? []) {
        if (d.us < from || d.us > to || CLOSE_REASONS.has(d.reason)) continue;
        if (drop === undefined || Math.abs(d.us - s.firstSentUs) < Math.abs(drop.us - s.firstSentUs)) drop = d;
      }
      const flow = this.flows.get(key)?.find((f) => f.firstS * 1e6 >= from - 1e6 && f.firstS * 1e6 <= to);
      if (flow !== undefined && !flow.replied) out.unrepliedFlows++;
      let evidence: string;
      if (drop !== undefined) {
        out.dropped++;
        const pk = `${drop.reason}|${drop.location}|${drop.to}|${drop.direction}`;
        let p = places.get(pk);
        if (p === undefined) {
          p = { reason: drop.reason, location: drop.location, endpoint: drop.to, direction: drop.direction, count: 0, netns: [] };
          places.set(pk, p);
        }
        p.count++;
        if (!p.netns.includes(drop.netns) && p.netns.length < 16) p.netns.push(drop.netns);
        const dnated = drop.direction === 'query' && drop.to !== s.server;
        evidence = `${drop.direction === 'query' ? 'the query' : 'its answer'} was dropped on this node at ${drop.location} (${drop.reason})${drop.direction === 'query' ? (dnated ? ` after DNAT to ${drop.to}` : ` on its way to ${drop.to}`) : ''} in network namespace ${drop.netns}`;
      } else if (bpf) {
        out.beyond++;
        const ep = flow?.endpoint ?? s.endpoint ?? s.server;
        out.beyondByEndpoint[ep] = (out.beyondByEndpoint[ep] ?? 0) + 1;
        evidence = `no drop on this node: lost beyond it${flow !== undefined ? ` (conntrack: DNATed to ${flow.endpoint}, ${flow.replied ? 'replied to another query of its flow' : 'never replied'})` : ''}`;
      } else if (flow !== undefined) {
        out.unknown++;
        evidence = `conntrack: the flow to ${flow.endpoint} was ${flow.replied ? 'replied (to another query of it)' : 'never replied'}; the kernel's drops were not traced`;
      } else {
        out.unknown++;
        evidence = 'no kernel evidence (the kernel\'s drops were not traced, and conntrack saw no flow of it)';
      }
      if (out.examples.length < EXAMPLES) out.examples.push({ time: new Date(s.firstSentUs / 1000).toISOString(), client: s.client, clientPort: s.clientPort, name: s.name, type: s.type, outcome: s.outcome, evidence });
    }
    out.byPlace = [...places.values()].sort((a, b) => b.count - a.count);
    return out;
  }
}

/** Where stalled queries died: a finding per place with at least MIN of them; and those lost beyond this node. */
export function kernelFindings(k: KernelEvidence): Finding[] {
  const out: Finding[] = [];
  for (const { reason, location, count, places: list } of byCause(k.byPlace)) {
    if (count < MIN) continue;
    const where = list.slice(0, 5).map((p) => `${p.direction === 'query' ? 'queries to' : 'answers to'} ${p.endpoint} (${p.count})`).join(', ');
    out.push(finding({
      code: 'STALLS_DROPPED_ON_NODE',
      severity: 'critical',
      subject: { kind: 'machine' },
      message: `${count} of the ${k.joined} stalled queries (unanswered, or answered only after a resend) were dropped by this node's kernel at ${location} (${reason}): ${where}`,
      evidence: { reason, location, count, stalls: k.joined, endpoints: list.map((p) => p.endpoint).join(' ') },
      remedy: remedyFor(reason),
    }));
  }
  if (k.sources.bpf === null && k.beyond >= MIN) {
    const eps = Object.entries(k.beyondByEndpoint).sort((a, b) => b[1] - a[1]);
    out.push(finding({
      code: 'STALLS_BEYOND_NODE',
      severity: 'warning',
      subject: { kind: 'machine' },
      message: `${k.beyond} of the ${k.joined} stalled queries were not dropped on this node (the kernel's drops were traced, none was theirs): lost beyond it, on the way to ${eps.slice(0, 5).map(([e, n]) => `${e} (${n})`).join(', ')} or by ${eps.length === 1 ? 'it' : 'them'}${k.unrepliedFlows > 0 ? `; conntrack saw ${k.unrepliedFlows} of their flows never replied` : ''}`,
      evidence: { beyond: k.beyond, stalls: k.joined, endpoints: eps.map(([e]) => e).join(' '), unrepliedFlows: k.unrepliedFlows },
      remedy: 'look past this node: the endpoint pods (their logs, load, readiness) and the path to their nodes (drops there: run drops on those nodes)',
    }));
  }
  return out;
}
