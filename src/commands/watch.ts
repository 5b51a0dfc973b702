/**
 * `k8sdiag watch`: the DNS of the real pods, seen passively. Packets come from tcpdump run here (`-i any`, DNS ports
 * and the overlays' encapsulations) or from a capture taken elsewhere (`--pcap FILE`, `-` for stdin); each query is
 * paired with its answer (../capture/match.ts), and the result says who waited, for what, and through which endpoint.
 */
import { execa } from 'execa';
import { InputError, UserError } from '../errors.js';
import type { Finding } from '../findings.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import { streamBytes } from '../input.js';
import type { RunControl } from '../input.js';
import { CaptureReader } from '../capture/pcap.js';
import type { CapturedPacket } from '../capture/pcap.js';
import { DnsExtractor } from '../capture/extract.js';
import { Matcher, hostOfKey } from '../capture/match.js';
import type { MatchResult, StallEvent } from '../capture/match.js';
import { readPods } from '../capture/pods.js';
import { watchFindings } from './watch-findings.js';
import { NODE_RECIPE } from '../privilege.js';
import { KernelJoin, kernelFindings } from '../capture/kernel-join.js';
import type { KernelEvidence } from '../capture/kernel-join.js';
import { listenDrops } from './drops.js';

export interface WatchInput extends RunControl {
  /** A capture file, `-` for stdin; undefined: capture live with tcpdump. */
  pcap?: string;
  /** The interface tcpdump captures on (default any). */
  iface?: string;
  /** Stop a live capture after this long. */
  durationS?: number;
  /** Ports that carry DNS (default 53). */
  dnsPorts?: number[];
  /** How long a query waits for its answer before it counts as unanswered: the resolver's timeout (default 5 s). */
  timeoutS?: number;
  /** Stall events for answers slower than this (default the timeout). */
  slowS?: number;
  /** `kubectl get pods -A -o json` (or `-o wide`) output: pod IPs to namespace/name. */
  podsFile?: string;
  onStall?: (e: StallEvent) => void;
  /** Clients left out: their queries and answers are not counted (doctor's own addresses while it probes). */
  excludeClients?: ReadonlySet<string>;
  /** A live capture has begun: tcpdump listens (its own line, "listening on IF, link-type ..."). */
  onListening?: (line: string) => void;
  /** Join each stalled query to the kernel's evidence (drops' sources, run beside the capture). */
  kernel?: boolean;
  /** The kernel's sources are in: which run, and why any does not. */
  onKernel?: (what: string) => void;
}

export interface CaptureFacts {
  /** Where the packets came from: `tcpdump -i any`, a file, or stdin. */
  source: string;
  format: 'pcap' | 'pcapng' | 'unknown';
  /** The file was gzip (as `tcpdump -z gzip` leaves rotated captures), undone as it was read. */
  compression: 'gzip' | null;
  packets: number;
  /** Why reading stopped before the end (a damaged or cut capture), or null. */
  damaged: string | null;
  /** What tcpdump said it lost: dropped by the kernel, and by the interface (null: not known). */
  kernelDrops: number | null;
  ifDrops: number | null;
  /** Frames that were not DNS, by reason. */
  skipped: Record<string, number>;
  /** Frames the snap length cut short of their packet (a DNS message in one may be unreadable). */
  cut: number;
  /** From the first packet to the last, seconds. */
  spanS: number;
}

export interface WatchResult extends ResultHeader, MatchResult {
  command: 'watch';
  capture: CaptureFacts;
  timeoutS: number;
  /** Pod IP -> namespace/name, for the addresses seen (with --pods). */
  pods: Record<string, string>;
  interrupted: boolean;
  /** With --kernel: each stalled query's kernel evidence, summed (null without --kernel). */
  kernel: KernelEvidence | null;
  findings: Finding[];
}

const MAX_SPAN_S = 7 * 24 * 3600;
/**
 * tcpdump's kernel buffer (-B), KiB. Its 2 MiB default dropped packets at 12k queries/s through a DNATed path on two
 * cores (each query and answer seen twice on -i any); 32 MiB dropped none (bench section 9). Immediate mode stays:
 * without it packets come in the kernel's blocks, a quarter faster, but the last block is lost when tcpdump is stopped.
 */
const CAPTURE_BUFFER_KIB = 32 * 1024;
/** DNS over TCP's snap length: a whole message of the largest size, with its headers. */
const TCP_SNAP = 65_535 + 128;
/** How long a TCP packet waits for the UDP capture to pass its time. */
const HOLD_MS = 500;

/** tcpdump's closing lines: "N packets dropped by kernel", "N packets dropped by interface". */
export function tcpdumpDrops(stderr: string): { kernel: number | null; iface: number | null } {
  const kernel = /(\d+) packets? dropped by kernel/.exec(stderr);
  const iface = /(\d+) packets? dropped by interface/.exec(stderr);
  return { kernel: kernel ? Number(kernel[1]) : null, iface: iface ? Number(iface[1]) : null };
}

export async function runWatch(input: WatchInput): Promise<WatchResult> {
  const header = startHeader('watch');
  const timeoutS = input.timeoutS ?? 5;
  const ports = input.dnsPorts ?? [53];
  const pods = input.podsFile !== undefined ? await readPods(input.podsFile) : new Map<string, string>();
  if (input.kernel === true && input.pcap !== undefined) throw new UserError('--kernel joins a live capture to what the kernel sees now: not a capture file', 'run watch --kernel on the node, without --pcap');
  const join = input.kernel === true ? new KernelJoin(ports) : undefined;
  const onStall = input.onStall;
  const stalled = onStall !== undefined || join !== undefined;
  const matcher = new Matcher({
    timeoutUs: timeoutS * 1e6,
    slowUs: (input.slowS ?? timeoutS) * 1e6,
    ...(join !== undefined ? { everyResend: true } : {}),
    ...(stalled
      ? {
          onStall: (e: StallEvent) => {
            join?.stall(e);
            onStall?.({ ...e, pod: pods.get(e.client) ?? null });
          },
        }
      : {}),
    ...(input.excludeClients !== undefined ? { exclude: input.excludeClients } : {}),
  });
  const extractor = new DnsExtractor(new Set(ports), (m) => matcher.add(m), (client, ts) => matcher.connect(client, ts));
  let first = Number.NaN;
  let last = Number.NaN;
  let cut = 0;
  const onPacket = (p: CapturedPacket): void => {
    if (!(p.tsUs >= first)) first = p.tsUs;
    if (!(p.tsUs <= last)) last = p.tsUs;
    if (p.data.length < p.origLen) cut++;
    extractor.add(p);
  };
  /** Live, DNS over TCP comes in a capture of its own (captureArgs), put back in time order with the UDP one. */
  const merge = new TimeMerge(onPacket);
  const reader = new CaptureReader(input.pcap !== undefined ? onPacket : (p) => merge.passing(p));
  const tcpReader = new CaptureReader((p) => merge.held(p));
  let source: string;
  let kernelDrops: number | null = null;
  let ifDrops: number | null = null;
  let interrupted = false;
  let gzip = false;
  let kernelSources: KernelEvidence['sources'] | undefined;
  if (input.pcap !== undefined) {
    source = input.pcap === '-' ? 'stdin' : input.pcap;
    if (input.pcap === '-' && process.stdin.isTTY === true) throw new UserError('--pcap -: stdin is a terminal, not a capture', 'pipe one in: tcpdump -i any -w - port 53 | k8sdiag watch --pcap -');
    const unzipped = await streamBytes(
      input.pcap,
      (chunk) => {
        reader.feed(chunk);
        if (reader.damaged !== undefined) return false;
        if (input.signal?.aborted) {
          interrupted = true;
          return false;
        }
        return true;
      },
      Number.POSITIVE_INFINITY,
      { gunzip: true },
    );
    gzip = unzipped.gzip;
    if (unzipped.gzipError !== undefined) reader.stop(unzipped.gzipError);
    reader.end();
    if (reader.packets === 0 && reader.damaged !== undefined) throw new InputError(`${source}: ${reader.damaged}`, 'give a capture tcpdump wrote: tcpdump -i any -w FILE port 53');
  } else {
    const iface = input.iface ?? 'any';
    source = `tcpdump -i ${iface}`;
    let drops: Awaited<ReturnType<typeof captureLive>>;
    // The kernel's sources first, listening before the capture begins; stopped once it ends.
    const kernelStop = new AbortController();
    const kernelRun =
      join !== undefined
        ? await listenDrops({
            dnsPorts: ports,
            timeoutS,
            signal: kernelStop.signal,
            onDrop: (e) => join.drop(e),
            onFlow: (f) => join.flow(f),
            ...(input.onKernel !== undefined ? { onListening: input.onKernel } : {}),
          })
        : undefined;
    try {
      drops = await captureLive(iface, ports, input, { udp: reader, tcp: tcpReader });
    } finally {
      merge.end();
      kernelStop.abort();
    }
    if (kernelRun !== undefined) kernelSources = (await kernelRun.done).sources;
    kernelDrops = drops.kernel;
    ifDrops = drops.iface;
    interrupted = drops.interrupted;
  }
  extractor.end();
  // A live capture ended now; a file's end is its last packet.
  const m = matcher.result(input.pcap === undefined ? Date.now() * 1000 : undefined);
  const seen = new Set([...Object.keys(m.byClient), ...Object.keys(m.byEndpoint).map(hostOfKey)]);
  const podNames: Record<string, string> = {};
  for (const ip of seen) {
    const name = pods.get(ip);
    if (name !== undefined) podNames[ip] = name;
  }
  const spanS = Number.isFinite(first) && Number.isFinite(last) ? Math.min(MAX_SPAN_S, Math.max(0, (last - first) / 1e6)) : 0;
  const capture: CaptureFacts = {
    source,
    format: reader.formatName,
    compression: gzip ? 'gzip' : null,
    packets: reader.packets + tcpReader.packets,
    damaged: reader.damaged ?? tcpReader.damaged ?? null,
    kernelDrops,
    ifDrops: ifDrops ?? reader.stats.ifDrops,
    skipped: Object.fromEntries(Object.entries(extractor.skipped).filter(([, n]) => n > 0)),
    cut,
    spanS: Number(spanS.toFixed(3)),
  };
  if (m.messages === 0 && input.pcap !== undefined && !interrupted) {
    // Nothing to judge: said as such, never as a healthy capture.
    const why = Object.entries(capture.skipped).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
    throw new InputError(
      `${source}: no DNS message in it: ${reader.packets === 0 ? 'no packets' : `${reader.packets} packets, none DNS (skipped: ${why || 'none'})`}${reader.damaged !== undefined ? `; ${reader.damaged}` : ''}`,
      'capture port 53 (and each --dns-port): tcpdump -i any -w FILE port 53',
    );
  }
  const kernel = join !== undefined && kernelSources !== undefined ? join.result(kernelSources) : null;
  const result: WatchResult = { ...header.finish(), command: 'watch', ...m, capture, timeoutS, pods: podNames, interrupted, kernel, findings: [] };
  result.findings = [...watchFindings(result), ...(kernel !== null ? kernelFindings(kernel) : [])];
  return result;
}

/**
 * Two live captures as one, in time order: the TCP capture's packets (few) are held until the UDP capture has passed
 * their time, or for HOLD_MS at most (a quiet UDP side), so a TCP query never reaches the matcher before the
 * truncated UDP answer it retries.
 */
class TimeMerge {
  /** Held TCP packets in capture order (one tcpdump's order: time order), each with when it arrived, ms. */
  private queue: Array<{ p: CapturedPacket; at: number }> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly out: (p: CapturedPacket) => void) {}

  held(p: CapturedPacket): void {
    this.queue.push({ p: { ...p, data: Buffer.from(p.data) }, at: Date.now() });
    this.timer ??= setInterval(() => this.release(-Infinity, Date.now() - HOLD_MS), HOLD_MS / 2);
  }

  /** A UDP packet: the held ones from before it go first. One comparison when none is due. */
  passing(p: CapturedPacket): void {
    if (this.queue.length > 0 && this.queue[0]!.p.tsUs <= p.tsUs) this.release(p.tsUs, -Infinity);
    this.out(p);
  }

  end(): void {
    this.release(Infinity, Infinity);
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Out go, from the front, the held packets up to `tsUs` or held since before `before` (ms). */
  private release(tsUs: number, before: number): void {
    let k = 0;
    while (k < this.queue.length && (this.queue[k]!.p.tsUs <= tsUs || this.queue[k]!.at < before)) k++;
    if (k === 0) return;
    const out = this.queue.slice(0, k);
    this.queue = this.queue.slice(k);
    for (const h of out) this.out(h.p);
  }
}

/**
 * The live capture, in two tcpdumps: UDP (and the overlays a pod's packets may travel in) cut at 512 bytes, which
 * keeps the kernel buffer's slots many at a busy node's rates; and DNS over TCP whole, so a long answer (what a
 * truncated one is retried for) is never cut.
 */
export function captureArgs(iface: string, ports: number[]): { udp: string[]; tcp: string[] } {
  const dns = ports.map((p) => `port ${p}`).join(' or ');
  const common = ['-i', iface, '--immediate-mode', '-B', String(CAPTURE_BUFFER_KIB), '-U', '-w', '-', '-n'];
  return {
    udp: [...common, '-s', '512', `udp and (${dns}) or udp port 4789 or udp port 8472 or udp port 6081 or ip proto 4 or ip6 proto 41`],
    tcp: [...common, '-s', String(TCP_SNAP), `tcp and (${dns})`],
  };
}

/** Run both tcpdumps until the duration ends or the signal stops them; feed each capture to its reader as it arrives. */
async function captureLive(iface: string, ports: number[], input: WatchInput, readers: { udp: CaptureReader; tcp: CaptureReader }): Promise<{ kernel: number | null; iface: number | null; interrupted: boolean }> {
  const args = captureArgs(iface, ports);
  const run = (what: 'udp' | 'tcp') => execa('tcpdump', args[what], { buffer: { stdout: false, stderr: true }, reject: false, stdin: 'ignore', maxBuffer: { stderr: 1 << 20 } });
  const children = { udp: run('udp'), tcp: run('tcp') };
  const all = [children.udp, children.tcp];
  let interrupted = false;
  const stop = (): void => {
    for (const c of all) c.kill('SIGTERM');
  };
  const timer = input.durationS !== undefined ? setTimeout(stop, input.durationS * 1000) : undefined;
  const onAbort = (): void => {
    interrupted = true;
    stop();
  };
  input.signal?.addEventListener('abort', onAbort, { once: true });
  children.udp.stdout?.on('data', (chunk: Buffer) => readers.udp.feed(chunk));
  children.tcp.stdout?.on('data', (chunk: Buffer) => readers.tcp.feed(chunk));
  // Said once both listen: the first one's line.
  let listening = 0;
  let firstLine = '';
  for (const child of all) {
    let said = '';
    const onErr = (d: Buffer): void => {
      said += d.toString('latin1');
      const line = /^tcpdump: (listening on [^\n]*)/m.exec(said);
      if (line !== null) {
        child.stderr?.off('data', onErr);
        if (firstLine === '') firstLine = line[1]!;
        if (++listening === all.length) input.onListening?.(firstLine);
      }
      if (said.length > 4096) child.stderr?.off('data', onErr);
    };
    child.stderr?.on('data', onErr);
  }
  try {
    // One that fails stops the other.
    const results = await Promise.all(all.map((c) => c.then((r) => {
      if (r.failed && !r.isTerminated) stop();
      return r;
    })));
    for (const r of results) {
      const stderr = String(r.stderr ?? '');
      if (r.failed && (r.exitCode === undefined || r.exitCode !== 0) && !r.isTerminated) {
        if ((r as { code?: string }).code === 'ENOENT') throw new UserError('tcpdump is not installed here', 'install it (apt-get install tcpdump; the k8sdiag image has it), or capture elsewhere and give --pcap FILE');
        const line = stderr.split('\n').find((l) => /tcpdump: /.test(l)) ?? stderr.split('\n')[0] ?? '';
        if (/permission|not permitted/i.test(stderr)) {
          throw new UserError(`tcpdump cannot capture: ${line.replace(/^tcpdump: /, '')}`, `capture needs root with NET_RAW and NET_ADMIN: on the node, ${NODE_RECIPE}`);
        }
        throw new UserError(`tcpdump failed: ${line.replace(/^tcpdump: /, '') || `exit ${String(r.exitCode)}`}`, 'check --interface (tcpdump -D lists them)');
      }
    }
    readers.udp.end();
    readers.tcp.end();
    const drops = results.map((r) => tcpdumpDrops(String(r.stderr ?? '')));
    const sum = (k: 'kernel' | 'iface'): number | null => (drops.every((d) => d[k] === null) ? null : drops.reduce((n, d) => n + (d[k] ?? 0), 0));
    return { kernel: sum('kernel'), iface: sum('iface'), interrupted };
  } finally {
    if (timer) clearTimeout(timer);
    input.signal?.removeEventListener('abort', onAbort);
    for (const c of all) if (c.exitCode === null) c.kill('SIGKILL');
  }
}
