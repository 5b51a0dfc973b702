/**
 * `k8sdiag drops`: every DNS packet this node's kernel dropped while it ran, where (the kernel function) and why (the
 * drop reason, by the running kernel's own names), per endpoint. Needs root with CAP_BPF and CAP_SYS_ADMIN, bpftrace,
 * tracefs and a kernel with drop reasons (5.17+); where one is missing it says which, and what to run instead.
 */
import { UserError } from '../errors.js';
import { finding } from '../findings.js';
import type { Finding } from '../findings.js';
import { startHeader } from '../header.js';
import { readFileSync } from 'node:fs';
import { parseConntrackInput } from '../conntrack/parse.js';
import type { ResultHeader } from '../header.js';
import { NODE_RECIPE, NODE_RECIPE_FULL } from '../privilege.js';
import { binomialGreater, fisherGreater, formatP } from '../stats/significance.js';
import { ctEventsArgs, FlowTable } from '../kernel/ct-events.js';
import { netnsPods } from '../kernel/netns-pods.js';
import { dropRules } from '../kernel/rule-finder.js';
import type { RuleCandidate } from '../kernel/rule-finder.js';
import { readPodIndex } from '../capture/pods.js';
import type { CtSummary, Flow } from '../kernel/ct-events.js';
import { byCause, CLOSE_REASONS, dropsProgram, parseLine, parseReasons, readFormat, remedyFor, TRACEFS } from '../kernel/drops.js';
import type { DropEvent } from '../kernel/drops.js';

export interface DropsInput {
  durationS?: number;
  dnsPorts?: number[];
  signal?: AbortSignal;
  /** Which evidence: the kernel's drops (bpftrace), conntrack's events, or each where it can run (default). */
  source?: 'auto' | 'bpf' | 'conntrack';
  /** A flow unreplied this long is judged unreplied (the resolver's timeout), seconds. */
  timeoutS?: number;
  /** `kubectl get pods -A -o json` (or -o wide): name each drop's pod by address, and (JSON) by its namespace's inode. */
  podsFile?: string;
  /** Where /proc is (tests). */
  proc?: string;
  /** Only drops in this network namespace (its inode), for tests and for a pod's own. */
  netns?: number;
  /** When the sources are in and drops are being seen. */
  onListening?: (sources: string) => void;
  /** Where to look for tracefs (tests). */
  tracefs?: readonly string[];
  /** How long bpftrace may take to attach, seconds (default ATTACH_S; tests). */
  attachS?: number;
  /** Each DNS drop as it is seen, with its time in µs since the epoch (watch --kernel joins them to its stalls). */
  onDrop?: (e: DropEvent & { epochUs: number }) => void;
  /** Each conntrack flow as it is judged. */
  onFlow?: (f: Flow) => void;
}

/** Drops at one place: the same reason, kernel function, endpoint and direction. */
export interface DropPlace {
  reason: string;
  location: string;
  /** The DNS side's address and port: the server a query went to, or the one an answer came from. */
  endpoint: string;
  direction: 'query' | 'answer';
  transport: 'udp' | 'tcp';
  count: number;
  /** The network namespaces (inodes) they were dropped in. */
  netns: number[];
  /** With --pods: the pods they belonged to (by namespace inode, else by the pod side's address). */
  pods: string[];
  /**
   * A rule's verdict (NETFILTER_DROP at nft_do_chain or ipt_do_table): the DROP and REJECT rules of this network
   * namespace that name a DNS port or this endpoint, with their table and chain; the kernel does not say which one.
   */
  rules?: RuleCandidate[];
}

export interface DropsResult extends ResultHeader {
  command: 'drops';
  /** The tracepoint and the format file its reasons were named from, and conntrack's events, as they ran. */
  source: string;
  /** Each source: null where it ran, else why it did not. */
  sources: { bpf: string | null; conntrack: string | null };
  ports: number[];
  seconds: number;
  drops: number;
  /** Drops the program counted but did not print: past its cap of lines a second. */
  leftOut: number;
  /** Lines of the program's output that were not its format (never expected: counted, not guessed at). */
  unparsed: number;
  byPlace: DropPlace[];
  /** The first drops, each with its time (and with --pods its pod). */
  events: Array<DropEvent & { time: string; pod: string | null }>;
  /**
   * conntrack's own counters over the same interval (/proc/net/stat/nf_conntrack, summed over CPUs): a drop at the
   * confirm step (the insert race) moves insert_failed, a rule's does not. Null where the file could not be read.
   */
  counters: { insertFailed: number; drop: number; earlyDrop: number } | null;
  /** conntrack's DNS flows while it ran (null where conntrack did not run). */
  conntrack: (CtSummary & { timeoutS: number }) | null;
  interrupted: boolean;
  findings: Finding[];
}

const MIN = 3;
const P = 0.001;
/** Flows a healthy path may leave unreplied as a matter of course (a client that gave up, a server's own drop). */
const UNREPLIED_BACKGROUND = 0.01;
const EVENTS_KEPT = 200;
/** How long bpftrace may take to compile, load and attach its program. */
const ATTACH_S = 60;

const formatEndpoint = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

/** Why bpftrace cannot trace drops here, before trying: not root, no tracefs, no drop reasons; or the reasons. */
function bpfPrecheck(tracefs: readonly string[]): { why: string; hint: string } | { reasons: Map<number, string>; path: string } {
  if (process.getuid?.() !== 0) return { why: 'the kernel\'s drops need root with CAP_BPF and CAP_SYS_ADMIN (bpftrace)', hint: `on the node: ${NODE_RECIPE_FULL}` };
  const format = readFormat(tracefs);
  if ('missing' in format) return { why: `tracefs is not mounted: ${format.missing}`, hint: 'mount it: mount -t tracefs nodev /sys/kernel/tracing' };
  const reasons = parseReasons(format.text);
  if (reasons === undefined) return { why: "this kernel's skb:kfree_skb tracepoint has no drop reason (Linux 5.17 and later have them)", hint: 'watch --pcap and doctor still tell lost queries apart by what they send' };
  return { reasons, path: format.path };
}

export async function runDrops(input: DropsInput): Promise<DropsResult> {
  const header = startHeader('drops');
  const ports = input.dnsPorts ?? [53];
  const want = input.source ?? 'auto';
  const timeoutS = input.timeoutS ?? 5;
  const { execa } = await import('execa');
  const places = new Map<string, DropPlace>();
  const events: DropsResult['events'] = [];
  let drops = 0;
  let leftOut = 0;
  let unparsed = 0;
  let started = 0;
  let timer: NodeJS.Timeout | undefined;
  let interrupted = false;
  let stopped = false;
  const stoppers: Array<() => void> = [];
  const stop = (): void => {
    stopped = true;
    for (const f of stoppers) f();
  };
  const onAbort = (): void => {
    interrupted = true;
    stop();
  };
  input.signal?.addEventListener('abort', onAbort, { once: true });
  const sources: DropsResult['sources'] = { bpf: want === 'conntrack' ? 'not asked (--source conntrack)' : null, conntrack: want === 'bpf' ? 'not asked (--source bpf)' : null };
  const running: Array<Promise<unknown>> = [];
  const children: Array<{ exitCode: number | null; kill: (s?: NodeJS.Signals) => boolean }> = [];
  let reasonsPath = '';
  let countersAtStart: DropsResult['counters'] = null;
  let ct: { refused: () => string | undefined } | undefined;
  /** conntrack's events cannot be read: said, or (asked for alone, or the only source left) refused in one line. */
  const notRead = (why: string): void => {
    if (want === 'conntrack') throw new UserError(`conntrack events: ${why}`, `conntrack -E needs NET_ADMIN and the conntrack tool (apt-get install conntrack): ${NODE_RECIPE}`);
    if (sources.bpf !== null) throw new UserError(`drops cannot read either source here: ${sources.bpf}; conntrack events: ${why}`, `on the node: ${NODE_RECIPE_FULL} (both), or --profile=netadmin (conntrack events only)`);
    sources.conntrack = why;
  };
  const flows = new FlowTable(input.onFlow);
  const pods = input.podsFile !== undefined ? await readPodIndex(input.podsFile) : undefined;
  const inodePods = pods !== undefined ? netnsPods(pods.byUid, input.proc) : new Map<number, string>();
  const podOf = (e: DropEvent, query: boolean): string | null => inodePods.get(e.netns) ?? pods?.byIp.get(query ? e.src : e.dst) ?? pods?.byIp.get(query ? e.dst : e.src) ?? null;
  try {
    // The kernel's drops: bpftrace, until it says its probes are in (or fails).
    if (want !== 'conntrack') {
      const pre = bpfPrecheck(input.tracefs ?? TRACEFS);
      if ('why' in pre) {
        if (want === 'bpf') throw new UserError(pre.why, pre.hint);
        sources.bpf = pre.why;
      } else {
        reasonsPath = pre.path;
        const reasons = pre.reasons;
        const child = execa('bpftrace', ['-e', dropsProgram(ports)], { reject: false, stdin: 'ignore', buffer: { stdout: false, stderr: true }, maxBuffer: { stderr: 1 << 20 }, env: { BPFTRACE_STRLEN: '64' } });
        children.push(child);
        stoppers.push(() => child.kill('SIGINT')); // its END block prints what it left out
        const offsetNs = Date.now() * 1e6 - Number(process.hrtime.bigint());
        let attached: () => void = () => undefined;
        const attach = new Promise<void>((resolve) => (attached = resolve));
        let pending = '';
        const onLine = (line: string): void => {
          if (line === '') return;
          if (started === 0 && /^Attaching \d+ probes?/.test(line)) {
            // bpftrace says so on stdout once its probes are in: drops are seen from now.
            started = performance.now();
            attached();
            return;
          }
          const e = parseLine(line, reasons);
          if (e === undefined) {
            unparsed++;
            return;
          }
          if ('over' in e) {
            leftOut += e.over;
            return;
          }
          if (input.netns !== undefined && e.netns !== input.netns) return;
          drops++;
          input.onDrop?.({ ...e, epochUs: (e.ns + offsetNs) / 1000 });
          const toServer = ports.includes(e.dport);
          const endpoint = toServer ? formatEndpoint(e.dst, e.dport) : formatEndpoint(e.src, e.sport);
          const direction = toServer ? 'query' : 'answer';
          const key = `${e.reason}|${e.location}|${endpoint}|${direction}|${e.transport}`;
          let p = places.get(key);
          if (p === undefined) {
            p = { reason: e.reason, location: e.location, endpoint, direction, transport: e.transport, count: 0, netns: [], pods: [] };
            places.set(key, p);
          }
          p.count++;
          if (!p.netns.includes(e.netns) && p.netns.length < 16) p.netns.push(e.netns);
          const pod = pods !== undefined ? podOf(e, toServer) : null;
          if (pod !== null && !p.pods.includes(pod) && p.pods.length < 8) p.pods.push(pod);
          if (events.length < EVENTS_KEPT) events.push({ ...e, time: new Date((e.ns + offsetNs) / 1e6).toISOString(), pod });
        };
        child.stdout?.on('data', (d: Buffer) => {
          pending += d.toString('latin1');
          if (pending.length > 1 << 20) pending = pending.slice(-4096); // never a line that long
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const l of lines) onLine(l);
        });
        const done = child.then((r) => {
          onLine(pending.trim());
          attached();
          return r;
        });
        running.push(done);
        // bpftrace compiles and loads its program first (a second or two); one that never says its probes are in is
        // stopped rather than waited on without end.
        let slow = false;
        const slowTimer = setTimeout(() => {
          slow = true;
          child.kill('SIGKILL');
        }, (input.attachS ?? ATTACH_S) * 1000);
        await attach;
        clearTimeout(slowTimer);
        if (started === 0 && !interrupted) {
          const r = await done;
          const why = slow
            ? `bpftrace did not attach to skb:kfree_skb within ${input.attachS ?? ATTACH_S} s`
            : (r as { code?: string }).code === 'ENOENT'
              ? 'bpftrace is not installed here'
              : `bpftrace could not attach to skb:kfree_skb: ${(String(r.stderr ?? '').split('\n').find((l) => /^ERROR|error/i.test(l) && !/RLIMIT_MEMLOCK/.test(l)) ?? `bpftrace exited ${String(r.exitCode ?? r.signal)}`).replace(/^ERROR: /, '')}`;
          const hint = (r as { code?: string }).code === 'ENOENT' ? 'apt-get install bpftrace (the k8sdiag image has it)' : `it needs root with CAP_BPF and CAP_SYS_ADMIN, BTF (/sys/kernel/btf/vmlinux) and no kernel lockdown: ${NODE_RECIPE_FULL}`;
          if (want === 'bpf') throw new UserError(why, hint);
          sources.bpf = why;
        }
      }
    }
    // conntrack's events: one subscription per transport, port and family, filtered in the kernel.
    if (want !== 'bpf' && !interrupted) {
      ct = await startConntrack(execa, ports, flows, children, stoppers, running, () => stopped);
      const why = ct.refused();
      if (why !== undefined) notRead(why);
      if (started === 0) started = performance.now();
    }
    const what = [sources.bpf === null ? 'skb:kfree_skb' : '', sources.conntrack === null ? 'conntrack events' : ''].filter(Boolean).join(' and ');
    const missing = want === 'auto' ? [sources.bpf !== null ? `not the kernel's drops: ${sources.bpf}` : '', sources.conntrack !== null ? `not conntrack events: ${sources.conntrack}` : ''].filter(Boolean) : [];
    countersAtStart = readCounters();
    input.onListening?.(`${what}${missing.length > 0 ? ` (${missing.join('; ')})` : ''}`);
    if (input.durationS !== undefined && !stopped) timer = setTimeout(stop, input.durationS * 1000);
    if (stopped) stop();
    await Promise.all(running);
    // Subscriptions that all ended on their own after the first moments (a refusal that came late): not read after all.
    const late = sources.conntrack === null ? ct?.refused() : undefined;
    if (late !== undefined) notRead(late);
  } finally {
    if (timer) clearTimeout(timer);
    input.signal?.removeEventListener('abort', onAbort);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
  const byPlace = [...places.values()].sort((a, b) => b.count - a.count);
  await findRules(execa, byPlace, ports);
  const end = readCounters();
  const counters = countersAtStart !== null && end !== null ? { insertFailed: end.insertFailed - countersAtStart.insertFailed, drop: end.drop - countersAtStart.drop, earlyDrop: end.earlyDrop - countersAtStart.earlyDrop } : null;
  const seconds = started === 0 ? 0 : (performance.now() - started) / 1000;
  const summary = sources.conntrack === null ? flows.summary(Date.now() / 1000, timeoutS) : null;
  if (summary !== null && pods !== undefined) {
    for (const e of summary.byEndpoint) e.pod = pods.byIp.get(e.endpoint.replace(/^\[?(.*?)\]?:\d+$/, '$1')) ?? null;
    for (const f of summary.unrepliedFlows) f.clientPod = pods.byIp.get(f.client) ?? null;
  }
  const conntrack = summary !== null ? { ...summary, timeoutS } : null;
  const source = [sources.bpf === null ? `bpftrace skb:kfree_skb (reasons from ${reasonsPath})` : '', conntrack !== null ? 'conntrack -E' : ''].filter(Boolean).join(' and ');
  const result: DropsResult = { ...header.finish(), command: 'drops', source, sources, ports, seconds: Number(seconds.toFixed(1)), drops, leftOut, unparsed, byPlace, events, counters: counters !== null && Object.values(counters).every((v) => v >= 0) ? counters : null, conntrack, interrupted, findings: [] };
  result.findings = [...dropsFindings(result), ...conntrackFindings(result)];
  return result;
}

/** conntrack's counters in this network namespace, summed over CPUs; null where they cannot be read. */
function readCounters(): DropsResult['counters'] {
  try {
    const stats = parseConntrackInput(readFileSync('/proc/net/stat/nf_conntrack', 'latin1')).stats[0];
    if (stats === undefined) return null;
    const t = stats.totals;
    return { insertFailed: t['insert_failed'] ?? 0, drop: t['drop'] ?? 0, earlyDrop: t['early_drop'] ?? 0 };
  } catch {
    return null;
  }
}

/** For each place a rule's verdict dropped at, the candidate rules of this namespace (iptables-save, ip6tables-save). */
async function findRules(execa: Execa, byPlace: DropPlace[], ports: number[]): Promise<void> {
  const ruled = byPlace.filter((p) => p.reason === 'NETFILTER_DROP' && (p.location === 'nft_do_chain' || p.location === 'ipt_do_table'));
  if (ruled.length === 0) return;
  let text = '';
  for (const cmd of ['iptables-save', 'ip6tables-save']) {
    const r = await execa(cmd, [], { reject: false, stdin: 'ignore', timeout: 10_000, maxBuffer: 256 << 20 });
    if (r.exitCode === 0) text += `${String(r.stdout)}\n`;
  }
  for (const p of ruled) p.rules = dropRules(text, ports, [p.endpoint.replace(/^\[?(.*?)\]?:\d+$/, '$1')]);
}

/**
 * runDrops beside other work (watch --kernel, doctor --kernel): resolves once its sources listen, or rejects where none
 * can run, as runDrops does; `done` settles when `input.signal` stops it.
 */
export async function listenDrops(input: DropsInput): Promise<{ done: Promise<DropsResult> }> {
  let listening: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const done = runDrops({
    ...input,
    onListening: (what) => {
      input.onListening?.(what);
      listening();
    },
  });
  await Promise.race([ready, done]);
  // In an object: an async function would wait for a promise it returns.
  return { done };
}

type Execa = typeof import('execa').execa;

/**
 * Start `conntrack -E` for UDP and TCP to each port, IPv4 and IPv6, feeding `flows`. Resolves after the first moments
 * (a refusal comes at once); `refused()` then, or later, says why when every subscription has ended on its own (not
 * installed, no permission): one family missing from a kernel leaves the others reading.
 */
async function startConntrack(
  execa: Execa,
  ports: number[],
  flows: FlowTable,
  children: Array<{ exitCode: number | null; kill: (s?: NodeJS.Signals) => boolean }>,
  stoppers: Array<() => void>,
  running: Array<Promise<unknown>>,
  stopped: () => boolean,
): Promise<{ refused: () => string | undefined }> {
  const failed: string[] = [];
  const exits: Array<Promise<void>> = [];
  for (const proto of ['udp', 'tcp'] as const) {
    for (const port of ports) {
      for (const family of ['ipv4', 'ipv6'] as const) {
        const child = execa('conntrack', ctEventsArgs(proto, port, family), { reject: false, stdin: 'ignore', buffer: { stdout: false, stderr: true }, maxBuffer: { stderr: 1 << 16 } });
        children.push(child);
        stoppers.push(() => child.kill('SIGTERM'));
        let pending = '';
        child.stdout?.on('data', (d: Buffer) => {
          pending += d.toString('latin1');
          if (pending.length > 1 << 20) pending = pending.slice(-4096);
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const l of lines) flows.line(l, Date.now() / 1000);
        });
        const done = child.then((r) => {
          if (pending.trim() !== '') flows.line(pending, Date.now() / 1000);
          if (stopped()) return;
          const code = (r as { code?: string }).code;
          // Not there (ENOENT), or not a program that runs (a file in its place): as good as not installed.
          if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOEXEC') failed.push('the conntrack tool is not installed here');
          else failed.push((String(r.stderr ?? '').trim().split('\n').pop() || `conntrack exited ${String(r.exitCode ?? r.signal)}`).replace(/^conntrack v[\d.]+ \(conntrack-tools\): /, ''));
        });
        exits.push(done);
        running.push(done);
      }
    }
  }
  // A refusal comes at once (netlink says no, or there is no such program); a subscription that holds is listening.
  await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 300))]);
  return { refused: () => (failed.length === exits.length ? failed[0] : undefined) };
}

/**
 * conntrack's flows: an endpoint that left flows unreplied beyond chance against the other endpoints (it, not the path
 * to the Service); and, without such a comparison, flows unreplied beyond the background a healthy path has.
 */
export function conntrackFindings(r: Pick<DropsResult, 'conntrack' | 'seconds'>): Finding[] {
  const ct = r.conntrack;
  if (ct === null || ct.unreplied < MIN) return [];
  const out: Finding[] = [];
  const ends = ct.byEndpoint.filter((e) => e.flows > 0);
  const named = new Set<string>();
  if (ends.length >= 2) {
    for (const e of ends) {
      if (e.unreplied < MIN) continue;
      const others = ends.filter((o) => o !== e);
      const otherLost = others.reduce((n, o) => n + o.unreplied, 0);
      const otherFlows = others.reduce((n, o) => n + o.flows, 0);
      const p = fisherGreater(e.unreplied, e.flows, otherLost, otherFlows);
      if (p >= P) continue;
      named.add(e.endpoint);
      out.push(finding({
        code: 'CONNTRACK_UNREPLIED_ENDPOINT',
        severity: 'critical',
        subject: { kind: 'endpoint', address: e.endpoint, service: null },
        message: `conntrack saw ${e.unreplied} of ${e.flows} DNS flows to ${e.endpoint}${e.via.some((v) => v !== e.endpoint) ? ` (DNATed from ${e.via.join(', ')})` : ''} never replied within ${ct.timeoutS} s, while the other endpoints left ${otherLost} of ${otherFlows} (${formatP(p)}): this node sent the queries and that endpoint never answered them`,
        evidence: { endpoint: e.endpoint, unreplied: e.unreplied, flows: e.flows, otherUnreplied: otherLost, otherFlows, p: Number(p.toPrecision(3)), seconds: r.seconds },
        remedy: 'the endpoint (its pod, or the path from this node to it) loses or ignores queries: check that pod (kubectl logs, its readiness), and the network policy and routes toward its node',
      }));
    }
  }
  const rest = ends.filter((e) => !named.has(e.endpoint));
  const lost = rest.reduce((n, e) => n + e.unreplied, 0);
  const total = rest.reduce((n, e) => n + e.flows, 0);
  if (lost >= MIN) {
    const p = binomialGreater(lost, total, UNREPLIED_BACKGROUND);
    if (p < P) {
      out.push(finding({
        code: 'CONNTRACK_UNREPLIED',
        severity: 'warning',
        subject: { kind: 'machine' },
        message: `conntrack saw ${lost} of ${total} DNS flows never replied within ${ct.timeoutS} s (${rest.filter((e) => e.unreplied > 0).slice(0, 5).map((e) => `${e.endpoint}: ${e.unreplied} of ${e.flows}`).join(', ')}), more than the ${UNREPLIED_BACKGROUND * 100}% a healthy path leaves (${formatP(p)}): the queries left this node's conntrack and no answer came back`,
        evidence: { unreplied: lost, flows: total, endpoints: rest.filter((e) => e.unreplied > 0).map((e) => e.endpoint).join(' '), p: Number(p.toPrecision(3)), seconds: r.seconds },
        remedy: 'the loss is past this node\'s conntrack: on the path to the endpoints or at them; a drop on this node shows in `k8sdiag drops` as KERNEL_DROPS where bpftrace can run',
      }));
    }
  }
  return out;
}

/** A finding per reason and kernel function that dropped at least MIN DNS packets, naming the endpoints they were for. */
export function dropsFindings(r: Pick<DropsResult, 'byPlace' | 'leftOut' | 'seconds'> & { counters?: DropsResult['counters'] }): Finding[] {
  const out: Finding[] = [];
  for (const { reason, location, count, places: list } of byCause(r.byPlace)) {
    // A socket closed with data unread (a client that gave up): counted, not a loss on the way.
    if (count < MIN || CLOSE_REASONS.has(reason)) continue;
    const where = list.slice(0, 5).map((p) => `${p.direction === 'query' ? 'queries to' : 'answers from'} ${p.endpoint} (${p.count})`).join(', ');
    out.push(finding({
      code: 'KERNEL_DROPS',
      severity: 'warning',
      subject: { kind: 'machine' },
      message: `${count} DNS packets dropped by this node's kernel at ${location} (${reason}) in ${r.seconds} s: ${where}${list.length > 5 ? `, and ${list.length - 5} more places` : ''}${r.leftOut > 0 ? `; ${r.leftOut} more drops past the program's cap were counted but not read` : ''}${netfilterCause(reason, location, count, r.counters ?? null)}${rulesSaid(list)}`,
      evidence: { reason, location, count, endpoints: list.map((p) => p.endpoint).join(' '), seconds: r.seconds },
      remedy: remedyFor(reason),
    }));
  }
  return out;
}

/**
 * A netfilter drop told apart by conntrack's counters over the same interval: a rule's verdict (nft_do_chain,
 * ipt_do_table) leaves insert_failed still; the confirm step refusing an entry (the insert race) moves it.
 */
function netfilterCause(reason: string, location: string, count: number, c: DropsResult['counters']): string {
  if (reason !== 'NETFILTER_DROP' || c === null) return '';
  const rule = location === 'nft_do_chain' || location === 'ipt_do_table';
  // Outside a rule, conntrack that cannot make an entry (its table full, early_drop finding nothing to evict) drops the
  // packet and counts it in `drop`, not insert_failed (nf_conntrack_in -> init_conntrack).
  if (!rule && c.insertFailed === 0 && c.drop >= count) return `; conntrack's drop counter rose by ${c.drop} in the same interval and insert_failed did not: conntrack could not make entries (its table full): see conntrack`;
  if (c.insertFailed === 0) return rule ? '; a rule\'s verdict: conntrack\'s insert_failed did not move in the same interval, so not the insert race' : '; conntrack\'s insert_failed did not move in the same interval';
  return `; conntrack's insert_failed rose by ${c.insertFailed} in the same interval${!rule && c.insertFailed >= count ? ': entries refused at the confirm step, the insert race' : ''}`;
}

/** The candidate rules of a rule's verdict, or that none in this namespace names DNS or the endpoint. */
function rulesSaid(list: DropPlace[]): string {
  if (list.every((p) => p.rules === undefined)) return '';
  const seen = new Map<string, RuleCandidate>();
  for (const p of list) for (const r of p.rules ?? []) seen.set(`${r.table}|${r.rule}`, r);
  if (seen.size === 0) return "; no DROP or REJECT rule of this network namespace names a DNS port or the endpoint: the rule is in another namespace (see netns) or matches more broadly";
  return `; the rules of this network namespace that drop them: ${[...seen.values()].slice(0, 3).map((r) => `${r.table} ${r.chain}: ${r.rule}`).join('; ')}`;
}

