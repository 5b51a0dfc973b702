/**
 * `k8sdiag drops`: every DNS packet this node's kernel dropped while it ran, where (the kernel function) and why (the
 * drop reason, by the running kernel's own names), per endpoint. Needs root with CAP_BPF and CAP_SYS_ADMIN, bpftrace,
 * tracefs and a kernel with drop reasons (5.17+); where one is missing it says which, and what to run instead.
 */
import { UserError } from '../errors.js';
import { finding } from '../findings.js';
import type { Finding } from '../findings.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import { NODE_RECIPE_FULL } from '../privilege.js';
import { dropsProgram, parseLine, parseReasons, readFormat, TRACEFS } from '../kernel/drops.js';
import type { DropEvent } from '../kernel/drops.js';

export interface DropsInput {
  durationS?: number;
  dnsPorts?: number[];
  signal?: AbortSignal;
  /** Only drops in this network namespace (its inode), for tests and for a pod's own. */
  netns?: number;
  /** When bpftrace has attached and drops are being seen. */
  onListening?: () => void;
  /** Where to look for tracefs (tests). */
  tracefs?: readonly string[];
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
}

export interface DropsResult extends ResultHeader {
  command: 'drops';
  /** The tracepoint and the format file its reasons were named from. */
  source: string;
  ports: number[];
  seconds: number;
  drops: number;
  /** Drops the program counted but did not print: past its cap of lines a second. */
  leftOut: number;
  /** Lines of the program's output that were not its format (never expected: counted, not guessed at). */
  unparsed: number;
  byPlace: DropPlace[];
  /** The first drops, each with its time. */
  events: Array<DropEvent & { time: string }>;
  interrupted: boolean;
  findings: Finding[];
}

const MIN = 3;
const EVENTS_KEPT = 200;

const formatEndpoint = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

export async function runDrops(input: DropsInput): Promise<DropsResult> {
  const header = startHeader('drops');
  const ports = input.dnsPorts ?? [53];
  if (process.getuid?.() !== 0) throw new UserError('drops needs root with CAP_BPF and CAP_SYS_ADMIN (bpftrace)', `on the node: ${NODE_RECIPE_FULL}`);
  const format = readFormat(input.tracefs ?? TRACEFS);
  if ('missing' in format) throw new UserError(`tracefs is not mounted: ${format.missing}`, 'mount it: mount -t tracefs nodev /sys/kernel/tracing');
  const reasons = parseReasons(format.text);
  if (reasons === undefined) throw new UserError("this kernel's skb:kfree_skb tracepoint has no drop reason (Linux 5.17 and later have them)", 'watch --pcap and doctor still tell lost queries apart by what they send');
  const { execa } = await import('execa');
  const child = execa('bpftrace', ['-e', dropsProgram(ports)], { reject: false, stdin: 'ignore', buffer: { stdout: false, stderr: true }, maxBuffer: { stderr: 1 << 20 }, env: { BPFTRACE_STRLEN: '64' } });
  const offsetNs = Date.now() * 1e6 - Number(process.hrtime.bigint());
  const places = new Map<string, DropPlace>();
  const events: DropsResult['events'] = [];
  let drops = 0;
  let leftOut = 0;
  let unparsed = 0;
  let pending = '';
  let started = 0;
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    child.kill('SIGINT'); // its END block prints what it left out
  };
  const onLine = (line: string): void => {
    if (line === '') return;
    if (started === 0 && /^Attaching \d+ probes?/.test(line)) {
      // bpftrace says so on stdout once its probes are in: drops are seen from now.
      started = performance.now();
      input.onListening?.();
      if (input.durationS !== undefined) timer = setTimeout(stop, input.durationS * 1000);
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
    const toServer = ports.includes(e.dport);
    const endpoint = toServer ? formatEndpoint(e.dst, e.dport) : formatEndpoint(e.src, e.sport);
    const direction = toServer ? 'query' : 'answer';
    const key = `${e.reason}|${e.location}|${endpoint}|${direction}|${e.transport}`;
    let p = places.get(key);
    if (p === undefined) {
      p = { reason: e.reason, location: e.location, endpoint, direction, transport: e.transport, count: 0, netns: [] };
      places.set(key, p);
    }
    p.count++;
    if (!p.netns.includes(e.netns) && p.netns.length < 16) p.netns.push(e.netns);
    if (events.length < EVENTS_KEPT) events.push({ ...e, time: new Date((e.ns + offsetNs) / 1e6).toISOString() });
  };
  child.stdout?.on('data', (d: Buffer) => {
    pending += d.toString('latin1');
    if (pending.length > 1 << 20) pending = pending.slice(-4096); // never a line that long
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  });
  let interrupted = false;
  const onAbort = (): void => {
    interrupted = true;
    stop();
  };
  input.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const r = await child;
    onLine(pending.trim());
    if (started === 0) {
      if ((r as { code?: string }).code === 'ENOENT') throw new UserError('bpftrace is not installed here', 'apt-get install bpftrace (the k8sdiag image has it)');
      if (!interrupted) {
        const why = String(r.stderr ?? '').split('\n').find((l) => /^ERROR|error/i.test(l) && !/RLIMIT_MEMLOCK/.test(l)) ?? `bpftrace exited ${String(r.exitCode ?? r.signal)}`;
        throw new UserError(`bpftrace could not attach to skb:kfree_skb: ${why.replace(/^ERROR: /, '')}`, `it needs root with CAP_BPF and CAP_SYS_ADMIN, BTF (/sys/kernel/btf/vmlinux) and no kernel lockdown: ${NODE_RECIPE_FULL}`);
      }
    }
  } finally {
    if (timer) clearTimeout(timer);
    input.signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const byPlace = [...places.values()].sort((a, b) => b.count - a.count);
  const seconds = started === 0 ? 0 : (performance.now() - started) / 1000;
  const result: DropsResult = { ...header.finish(), command: 'drops', source: `bpftrace skb:kfree_skb (reasons from ${format.path})`, ports, seconds: Number(seconds.toFixed(1)), drops, leftOut, unparsed, byPlace, events, interrupted, findings: [] };
  result.findings = dropsFindings(result);
  return result;
}

/** A finding per reason and kernel function that dropped at least MIN DNS packets, naming the endpoints they were for. */
export function dropsFindings(r: Pick<DropsResult, 'byPlace' | 'leftOut' | 'seconds'>): Finding[] {
  const at = new Map<string, DropPlace[]>();
  for (const p of r.byPlace) {
    const k = `${p.reason}|${p.location}`;
    const list = at.get(k);
    if (list === undefined) at.set(k, [p]);
    else list.push(p);
  }
  const out: Finding[] = [];
  for (const list of at.values()) {
    const count = list.reduce((n, p) => n + p.count, 0);
    if (count < MIN) continue;
    const { reason, location } = list[0]!;
    const where = list.slice(0, 5).map((p) => `${p.direction === 'query' ? 'queries to' : 'answers from'} ${p.endpoint} (${p.count})`).join(', ');
    out.push(finding({
      code: 'KERNEL_DROPS',
      severity: 'warning',
      subject: { kind: 'machine' },
      message: `${count} DNS packets dropped by this node's kernel at ${location} (${reason}) in ${r.seconds} s: ${where}${list.length > 5 ? `, and ${list.length - 5} more places` : ''}${r.leftOut > 0 ? `; ${r.leftOut} more drops past the program's cap were counted but not read` : ''}`,
      evidence: { reason, location, count, endpoints: list.map((p) => p.endpoint).join(' '), seconds: r.seconds },
      remedy: remedyFor(reason),
    }));
  }
  return out;
}

function remedyFor(reason: string): string {
  if (reason === 'NETFILTER_DROP') return 'a firewall rule dropped them (a NetworkPolicy, or a node firewall): iptables-save / nft list ruleset on this node shows which';
  if (reason === 'NO_SOCKET') return 'nothing listened on that address and port: the DNS server is down there, or the Service sends to a stale endpoint';
  if (reason.startsWith('QDISC') || reason === 'CPU_BACKLOG' || reason === 'SOCKET_RCVBUFF') return 'the node could not keep up: a queue or buffer overflowed (raise it, or spread the load)';
  return 'see the kernel drop reason; conntrack -S and the NIC counters tell more';
}
