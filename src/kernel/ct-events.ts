/**
 * conntrack's own event stream (`conntrack -E`, netlink; needs only NET_ADMIN): every DNS flow this network namespace
 * tracks, the endpoint a Service address was DNATed to (the reply tuple's source), and whether the endpoint ever
 * replied. A flow whose reply never came within the resolver's timeout is one whose queries were lost on the way to
 * that endpoint or by it: the kernel on this node forwarded them, and nothing came back.
 */

export interface CtEvent {
  /** Seconds since the epoch (`-o timestamp`), or null without it. */
  ts: number | null;
  type: 'NEW' | 'UPDATE' | 'DESTROY';
  proto: 'udp' | 'tcp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** Where replies come from: the endpoint after DNAT (the original destination when nothing translated it). */
  replySrc: string;
  replySport: number;
  /** conntrack had seen no reply when it said this. */
  unreplied: boolean;
  /** The entry's id (`-o id`), or null without it. */
  id: number | null;
}

const HEAD = /^(?:\[(\d+\.\d+)\]\s+)?\[(NEW|UPDATE|DESTROY)\]\s+(udp|tcp)\s+(17|6)\s+(.*)$/;
const TCP_STATES = new Set(['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2']);
const ADDR = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:.]*:[0-9a-f:.]*)$/i;

/** One line of `conntrack -E [-o timestamp,id]`, or undefined: anything not in that form is never guessed at. */
export function parseCtEvent(line: string): CtEvent | undefined {
  const m = HEAD.exec(line.trim());
  if (m === null) return undefined;
  const proto = m[3] as 'udp' | 'tcp';
  if ((proto === 'udp') !== (m[4] === '17')) return undefined;
  const tuples: Array<Record<'src' | 'dst' | 'sport' | 'dport', string>> = [];
  let unreplied = false;
  let id: number | null = null;
  const tokens = m[5]!.split(/\s+/);
  let k = 0;
  // The entry's timeout in seconds, then (TCP) its state.
  if (/^\d+$/.test(tokens[k] ?? '')) k++;
  if (proto === 'tcp' && TCP_STATES.has(tokens[k] ?? '')) k++;
  for (; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t === '[UNREPLIED]') {
      unreplied = true;
      continue;
    }
    if (/^\[[A-Z]+\]$/.test(t)) continue; // [ASSURED], [USERSPACE], [OFFLOAD]...
    const eq = t.indexOf('=');
    if (eq <= 0) return undefined;
    const key = t.slice(0, eq);
    const value = t.slice(eq + 1);
    if (key === 'src' || key === 'dst' || key === 'sport' || key === 'dport') {
      // src starts a tuple: the original first, then the reply.
      if (key === 'src') tuples.push({ src: '', dst: '', sport: '', dport: '' });
      const cur = tuples[tuples.length - 1];
      if (cur === undefined || cur[key] !== '') return undefined;
      cur[key] = value;
    } else if (key === 'id') {
      if (!/^\d+$/.test(value)) return undefined;
      id = Number(value);
    }
    // zone=, mark=, portid=, labels and the like: not needed.
  }
  if (tuples.length !== 2) return undefined;
  const [o, r] = tuples as [Record<string, string>, Record<string, string>];
  for (const t of [o, r]) {
    if (!ADDR.test(t['src']!) || !ADDR.test(t['dst']!) || !/^\d{1,5}$/.test(t['sport']!) || !/^\d{1,5}$/.test(t['dport']!)) return undefined;
    if (Number(t['sport']) > 65535 || Number(t['dport']) > 65535) return undefined;
  }
  return {
    ts: m[1] !== undefined ? Number(m[1]) : null,
    type: m[2] as CtEvent['type'],
    proto,
    src: o['src']!,
    dst: o['dst']!,
    sport: Number(o['sport']),
    dport: Number(o['dport']),
    replySrc: r['src']!,
    replySport: Number(r['sport']),
    unreplied,
    id,
  };
}

/** The arguments of one `conntrack -E` that sees the flows to `port` over `proto`, with times and ids. */
export function ctEventsArgs(proto: 'udp' | 'tcp', port: number, family: 'ipv4' | 'ipv6'): string[] {
  return ['-E', '-o', 'timestamp,id', '-f', family, '-p', proto, '--dport', String(port)];
}

export interface Flow {
  firstS: number;
  proto: 'udp' | 'tcp';
  client: string;
  clientPort: number;
  /** The address the client sent to (a Service's, or the server's own). */
  service: string;
  endpoint: string;
  replied: boolean;
}

export interface CtEndpoint {
  endpoint: string;
  /** The addresses its flows were sent to (a Service address when DNATed). */
  via: string[];
  flows: number;
  replied: number;
  unreplied: number;
  /** With --pods: the endpoint's pod. */
  pod?: string | null;
}

export interface CtSummary {
  flows: number;
  replied: number;
  /** Never replied: destroyed so, or unreplied for the timeout or longer when the run ended. */
  unreplied: number;
  /** Unreplied when the run ended but younger than the timeout: not judged. */
  waiting: number;
  byEndpoint: CtEndpoint[];
  /** The first unreplied flows, each with when it began. */
  unrepliedFlows: Array<{ time: string; proto: 'udp' | 'tcp'; client: string; service: string; endpoint: string; clientPod?: string | null }>;
  /** Flows seen only by their update or end: begun before the run (counted apart, not judged). */
  before: number;
  /** Flows let go past the table's bound before they were judged. */
  evicted: number;
  /** Lines that were not conntrack's event format. */
  unparsed: number;
}

const hostPort = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);
export const MAX_FLOWS = 100_000;
const FLOWS_KEPT = 200;
const MAX_ENDPOINTS = 1000;

/** The DNS flows of a run of `conntrack -E`, each judged replied or not; bounded. */
export class FlowTable {
  /** Each flow as it is judged (replied or not), for a caller that joins flows to queries. */
  constructor(private readonly onJudged?: (f: Flow) => void) {}

  private readonly flows = new Map<string, Flow>();
  private readonly ends = new Map<string, CtEndpoint>();
  private readonly kept: CtSummary['unrepliedFlows'] = [];
  private counts = { flows: 0, replied: 0, unreplied: 0, before: 0, evicted: 0, unparsed: 0 };

  line(text: string, nowS: number): void {
    if (text.trim() === '' || /^conntrack v[\d.]+ \(conntrack-tools\)/.test(text)) return;
    const e = parseCtEvent(text);
    if (e === undefined) {
      this.counts.unparsed++;
      return;
    }
    this.event(e, nowS);
  }

  event(e: CtEvent, nowS: number): void {
    const key = e.id !== null ? `${e.id}` : `${e.proto}|${e.src}|${e.sport}|${e.dst}|${e.dport}`;
    let f = this.flows.get(key);
    if (f === undefined) {
      if (e.type !== 'NEW') {
        this.counts.before++;
        return;
      }
      if (this.flows.size >= MAX_FLOWS) {
        const [oldKey] = this.flows.keys();
        this.flows.delete(oldKey!);
        this.counts.evicted++;
      }
      f = { firstS: e.ts ?? nowS, proto: e.proto, client: e.src, clientPort: e.sport, service: hostPort(e.dst, e.dport), endpoint: hostPort(e.replySrc, e.replySport), replied: false };
      this.flows.set(key, f);
    }
    if (!e.unreplied) f.replied = true;
    if (e.type === 'DESTROY') {
      this.flows.delete(key);
      this.judge(f);
    }
  }

  /** The run ended at `endS`: flows unreplied for `timeoutS` or longer are unreplied, younger ones waiting. */
  summary(endS: number, timeoutS: number): CtSummary {
    let waiting = 0;
    for (const f of this.flows.values()) {
      if (f.replied || endS - f.firstS >= timeoutS) this.judge(f);
      else waiting++;
    }
    this.flows.clear();
    const byEndpoint = [...this.ends.values()].sort((a, b) => b.unreplied - a.unreplied || b.flows - a.flows);
    return { flows: this.counts.flows, replied: this.counts.replied, unreplied: this.counts.unreplied, waiting, byEndpoint, unrepliedFlows: this.kept, before: this.counts.before, evicted: this.counts.evicted, unparsed: this.counts.unparsed };
  }

  private judge(f: Flow): void {
    this.counts.flows++;
    this.onJudged?.(f);
    // Endpoints are few on any node; past MAX_ENDPOINTS the rest are counted together.
    const at = this.ends.size >= MAX_ENDPOINTS && !this.ends.has(f.endpoint) ? 'other' : f.endpoint;
    let g = this.ends.get(at);
    if (g === undefined) {
      g = { endpoint: at, via: [], flows: 0, replied: 0, unreplied: 0 };
      this.ends.set(at, g);
    }
    g.flows++;
    if (!g.via.includes(f.service) && g.via.length < 8) g.via.push(f.service);
    if (f.replied) {
      this.counts.replied++;
      g.replied++;
      return;
    }
    this.counts.unreplied++;
    g.unreplied++;
    if (this.kept.length < FLOWS_KEPT) this.kept.push({ time: new Date(f.firstS * 1000).toISOString(), proto: f.proto, client: f.client, service: f.service, endpoint: f.endpoint });
  }
}
