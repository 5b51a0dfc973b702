/**
 * Resolver emulation: each unit of work is a lookup done the way a pod's libc
 * does it, so the benchmark sees what the application sees.
 *
 * glibc (resolv/res_send.c send_dg, res_query.c): the candidate names of
 * `k8sdiag resolv`, in order, stopping at the first that answers; for each
 * candidate a fresh UDP socket per nameserver (connected), A and AAAA sent
 * back to back from that one socket (sendmmsg: same source port), waiting for
 * both; per nameserver a time budget of (timeout << ns) / nscount; attempts x
 * nameservers tries. When a pair times out with one of its two replies, glibc
 * switches to single-request and resends on the same socket; a second such
 * event switches to single-request-reopen (the AAAA from a new socket). The
 * switch sticks for the rest of the process: by default every lookup is a
 * fresh process (the switch lasts one lookup), with --long-lived each
 * concurrency slot keeps it, as a long-running application's thread does.
 *
 * musl (src/network/lookup_name.c, res_msend.c): its own search rule; each
 * candidate's A and AAAA sent at once from one unconnected socket to every
 * nameserver, resent every timeout/attempts seconds until timeout; SERVFAIL
 * stops the lookup, NXDOMAIN goes on to the next name.
 *
 * Accounting per transmission: every datagram sent ends as answered, timed
 * out, an error, or (musl only) cancelled: a copy sent to another nameserver
 * or in an earlier round whose query was answered by another copy.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { RecordType } from 'dns-packet';
import { expandName } from '../resolv/expand.js';
import type { Expansion } from '../resolv/expand.js';
import type { ResolvConf } from '../resolv/parse.js';
import { makeTemplate, patchId, rcodeName, sameQuestion } from '../dns/wire.js';
import type { QueryTemplate } from '../dns/wire.js';
import { Counters, Histogram, LATENCY_MARKS_US } from '../stats/index.js';
import type { PercentileSummary, HistogramSnapshot } from '../stats/index.js';
import type { EngineResult, Progress, SlowEvent } from './engine.js';
import { UserError } from '../errors.js';
import { connectError, socketError } from './errors.js';
import { formatHostPort } from './engine.js';
import { readUdpSnmp, snmpDelta } from './drops.js';

export interface Nameserver {
  host: string;
  port: number;
}

export interface ResolverEmulationOptions {
  conf: ResolvConf;
  nameservers: Nameserver[];
  names: string[];
  concurrency: number;
  total?: number;
  durationMs?: number;
  qps?: number;
  slowMs: number;
  /** Overrides the file's `options timeout:` (seconds, as glibc counts them). */
  timeoutSeconds?: number;
  /** Override the file's single-request options (glibc). */
  singleRequest?: boolean;
  singleRequestReopen?: boolean;
  /** Keep glibc's adaptive mode per slot across lookups. */
  longLived?: boolean;
  signal?: AbortSignal;
  onSlow?: (e: SlowEvent) => void;
  onProgress?: (p: Progress) => void;
  progressEveryMs?: number;
}

export type LookupOutcome = 'answer' | 'nxdomain' | 'nodata' | 'servfail' | 'timeout' | 'refused' | 'error';

export interface LookupStats {
  libc: 'glibc' | 'musl';
  lookups: number;
  outcomes: Record<string, number>;
  lookupLatencyMs: PercentileSummary;
  /** The resolver's timeout (options timeout:, or --timeout). */
  timeoutMs: number;
  /** Lookups slower than 1 s and 5 s. */
  stalls: { over1s: number; over5s: number };
  /** Lookups that took the resolver's timeout or longer: the retry signature. */
  overTimeout: number;
  /** How often glibc's adaptive switch fired. */
  modeSwitches: { singleRequest: number; singleRequestReopen: number };
  /** musl: copies of a query cut short because another copy was answered. */
  cancelled: number;
  histogram: HistogramSnapshot;
}

/** Mode glibc keeps in its per-thread resolver state. */
interface GlibcMode {
  singleRequest: boolean;
  reopen: boolean;
}

interface Tx {
  id: number;
  t: QueryTemplate;
  sentAt: number;
  done: boolean;
  rcode: number;
  ancount: number;
  /** The reply had the TC bit: the libc asks again over TCP. */
  tc: boolean;
}

/** A name's candidates and their encoded queries: the same for every lookup of that name. */
interface Plan {
  expansion: Expansion;
  /** templates[i] are candidate i's queries. */
  templates: QueryTemplate[][];
}

interface Shared {
  plans: Map<string, Plan>;
  st: { sent: number; answered: number; timeouts: number; slow: number; late: number; wrongId: number; wrongQuestion: number; malformed: number; truncated: number; tcpRetries: number; cancelled: number };
  hist: Histogram;
  rcodes: Counters;
  errors: Counters;
  slowMs: number;
  onSlow: ((e: SlowEvent) => void) | undefined;
  /** glibc `options rotate`: the next lookup's first nameserver. */
  rotateOffset: number;
  /** Distinct UDP source ports the emulated libc used (bounded: at most 65,536). */
  ports: Set<number>;
}

const PROBLEM_RCODES = new Set([2, 4, 5]); // SERVFAIL, NOTIMP, REFUSED

/** Count a matching reply for a transmission: latency, rcode, slow line. */
function acceptReply(sh: Shared, tx: Tx, msg: Buffer, from: string, sourcePort: number, now: number): void {
  tx.done = true;
  tx.rcode = msg[3]! & 0x0f;
  tx.ancount = (msg[6]! << 8) | msg[7]!;
  tx.tc = (msg[2]! & 0x02) !== 0;
  if (tx.tc) sh.st.truncated++;
  const latency = now - tx.sentAt;
  sh.hist.record(latency * 1000);
  sh.rcodes.add(rcodeName(tx.rcode));
  sh.st.answered++;
  if (latency > sh.slowMs) {
    sh.st.slow++;
    sh.onSlow?.({
      time: new Date().toISOString(),
      kind: 'query',
      name: tx.t.name,
      type: tx.t.label,
      server: from,
      sourcePort,
      rcode: rcodeName(tx.rcode),
      latencyMs: Number(latency.toFixed(3)),
    });
  }
}

/**
 * glibc send_vc (options use-vc, or after a truncated UDP reply) and musl's TCP
 * fallback for a truncated reply (1.2.4+): one TCP connection, the queries
 * written, their replies read, within the given time budget.
 */
async function sendVc(sh: Shared, ns: Nameserver, templates: QueryTemplate[], budgetMs: number): Promise<{ txs: Tx[]; refused: boolean }> {
  const txs: Tx[] = [];
  const conn = net.connect({ host: ns.host, port: ns.port });
  let refused = false;
  let sourcePort = 0;
  try {
    await new Promise<void>((resolve) => {
      let acc: Buffer = Buffer.alloc(0);
      const timer = setTimeout(finish, budgetMs);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      conn.on('connect', () => {
        sourcePort = conn.localPort ?? 0;
        for (const t of templates) {
          const id = randomId();
          const framed = Buffer.alloc(2 + t.bytes.length);
          framed.writeUInt16BE(t.bytes.length, 0);
          t.bytes.copy(framed, 2);
          patchId(framed.subarray(2), id);
          txs.push({ id, t, sentAt: performance.now(), done: false, rcode: -1, ancount: 0, tc: false });
          sh.st.sent++;
          conn.write(framed);
        }
      });
      conn.on('data', (chunk: Buffer) => {
        acc = Buffer.concat([acc, chunk]);
        while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
          const msg = acc.subarray(2, 2 + acc.readUInt16BE(0));
          acc = acc.subarray(2 + msg.length);
          const id = msg.length >= 12 ? (msg[0]! << 8) | msg[1]! : -1;
          const tx = txs.find((x) => !x.done && x.id === id && sameQuestion(msg, x.t));
          if (tx) acceptReply(sh, tx, msg, `${ns.host}:${ns.port}`, sourcePort, performance.now());
          else if (msg.length < 12) sh.st.malformed++;
          else sh.st.wrongQuestion++;
          if (txs.length > 0 && txs.every((x) => x.done)) finish();
        }
      });
      conn.on('error', (err: NodeJS.ErrnoException) => {
        // A refused connect sent no query: nothing to count but the refusal itself.
        refused = err.code === 'ECONNREFUSED';
        for (const tx of txs) {
          if (tx.done) continue;
          tx.done = true;
          sh.errors.add(`tcp-${err.code ?? 'error'}`);
        }
        finish();
      });
      conn.on('close', finish);
    });
  } finally {
    conn.destroy();
  }
  for (const tx of txs) {
    if (tx.done) continue;
    tx.done = true;
    sh.st.timeouts++;
  }
  return { txs, refused };
}

/** One UDP socket of the emulation, with its transmissions and a waiter. */
class EmuSocket {
  readonly sock: dgram.Socket;
  port = 0;
  readonly txs: Tx[] = [];
  private readonly expired = new Set<number>();
  private waiter: (() => void) | undefined;
  error: string | undefined;

  constructor(
    private readonly sh: Shared,
    family: 'udp4' | 'udp6',
    readonly label: string,
  ) {
    this.sock = dgram.createSocket({ type: family });
    this.sock.on('message', (msg, rinfo) => this.onMessage(msg, `${rinfo.address}:${rinfo.port}`));
    this.sock.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err.code ?? 'socket';
      this.waiter?.();
    });
  }

  static async open(sh: Shared, ns: Nameserver | undefined, unconnectedFamily: 'udp4' | 'udp6' = 'udp4'): Promise<EmuSocket> {
    const family = ns ? (net.isIPv6(ns.host) ? 'udp6' : 'udp4') : unconnectedFamily;
    const s = new EmuSocket(sh, family, ns ? formatHostPort(ns.host, ns.port) : '*');
    try {
      await new Promise<void>((resolve, reject) => {
        s.sock.once('error', reject);
        const ok = (): void => {
          s.sock.off('error', reject);
          resolve();
        };
        // A failed connect() comes to this callback, not to 'error'.
        if (ns) s.sock.connect(ns.port, ns.host, (err?: Error) => (err ? reject(err) : ok()));
        else s.sock.bind(0, ok);
      });
    } catch (err) {
      s.close();
      const code = (err as NodeJS.ErrnoException).code;
      throw ns && code !== 'EMFILE' && code !== 'ENFILE' ? connectError(err, s.label) : socketError(err, s.label);
    }
    s.port = s.sock.address().port;
    sh.ports.add(s.port);
    return s;
  }

  send(t: QueryTemplate, id: number, to?: Nameserver): Tx {
    const buf = Buffer.from(t.bytes);
    patchId(buf, id);
    const tx: Tx = { id, t, sentAt: performance.now(), done: false, rcode: -1, ancount: 0, tc: false };
    this.txs.push(tx);
    this.sh.st.sent++;
    const cb = (err: Error | null): void => {
      if (err && !tx.done) {
        // A failed send (a pending ICMP error: ECONNREFUSED) fails the socket, as recvfrom would in send_dg.
        const code = (err as NodeJS.ErrnoException).code ?? 'send';
        tx.done = true;
        this.sh.errors.add(code);
        this.error ??= code;
        this.waiter?.();
      }
    };
    if (to) this.sock.send(buf, to.port, to.host, cb);
    else this.sock.send(buf, cb);
    return tx;
  }

  private onMessage(msg: Buffer, from: string): void {
    const sh = this.sh;
    if (msg.length < 12 || (msg[2]! & 0x80) === 0) {
      sh.st.malformed++;
      return;
    }
    const id = (msg[0]! << 8) | msg[1]!;
    const now = performance.now();
    let matchedId = false;
    for (const tx of this.txs) {
      if (tx.id !== id || tx.done) continue;
      matchedId = true;
      if (!sameQuestion(msg, tx.t)) continue;
      acceptReply(sh, tx, msg, from, this.port, now);
      this.waiter?.();
      return;
    }
    if (matchedId) sh.st.wrongQuestion++;
    else if (this.expired.has(id)) sh.st.late++;
    else sh.st.wrongId++;
  }

  /** Wait until `ready()` or the deadline; true when ready. */
  async waitFor(ready: () => boolean, deadline: number): Promise<boolean> {
    while (!ready()) {
      if (this.error !== undefined) return false;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = undefined;
          resolve();
        }, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
    return true;
  }

  /** End every unanswered transmission as a timeout (or `as`). */
  expire(as: 'timeout' | 'cancelled' | string = 'timeout'): void {
    for (const tx of this.txs) {
      if (tx.done) continue;
      tx.done = true;
      this.expired.add(tx.id);
      if (as === 'timeout') this.sh.st.timeouts++;
      else if (as === 'cancelled') this.sh.st.cancelled++;
      else this.sh.errors.add(as);
    }
  }

  close(): void {
    try {
      this.sock.close();
    } catch {
      // already closed
    }
  }
}

function randomId(): number {
  return (Math.random() * 0x10000) | 0;
}

type CandidateResult = { kind: 'answer' | 'nxdomain' | 'nodata' | 'servfail' | 'refused' } | { kind: 'timeout' } | { kind: 'error'; code: string };

function classify(txs: Tx[]): CandidateResult {
  const got = txs.filter((t) => t.rcode >= 0);
  if (got.length === 0) return { kind: 'timeout' };
  if (got.some((t) => t.rcode === 0 && t.ancount > 0)) return { kind: 'answer' };
  if (got.every((t) => t.rcode === 3)) return { kind: 'nxdomain' };
  if (got.some((t) => t.rcode === 2)) return { kind: 'servfail' };
  if (got.some((t) => t.rcode === 5 || t.rcode === 4)) return { kind: 'refused' };
  if (got.some((t) => t.rcode === 3)) return { kind: 'nxdomain' };
  return { kind: 'nodata' };
}

/** glibc send_dg for one nameserver: returns the transmissions that ended the call. */
async function glibcSendDg(sh: Shared, ns: Nameserver, templates: QueryTemplate[], budgetMs: number, mode: GlibcMode, switches: LookupStats['modeSwitches']): Promise<{ txs: Tx[]; refused: boolean; truncated?: boolean }> {
  const ids = templates.map(() => randomId());
  let sock = await EmuSocket.open(sh, ns);
  const sockets = [sock];
  try {
    for (;;) {
      const deadline = performance.now() + budgetMs;
      const txs: Tx[] = [];
      const single = mode.singleRequest || mode.reopen;
      if (!single || templates.length === 1) {
        templates.forEach((t, i) => txs.push(sock.send(t, ids[i]!)));
        await sock.waitFor(() => txs.every((x) => x.done) || txs.some((x) => x.tc), deadline);
      } else {
        txs.push(sock.send(templates[0]!, ids[0]!));
        const first = await sock.waitFor(() => txs[0]!.done, deadline);
        if (first && sock.error === undefined && !txs[0]!.tc) {
          if (mode.reopen) {
            sock = await EmuSocket.open(sh, ns);
            sockets.push(sock);
          }
          txs.push(sock.send(templates[1]!, ids[1]!));
          await sock.waitFor(() => txs[1]!.done, deadline);
        }
      }
      if (sock.error !== undefined) {
        for (const s of sockets) s.expire(sock.error);
        return { txs, refused: sock.error === 'ECONNREFUSED' };
      }
      if (txs.some((x) => x.tc)) {
        // send_dg: "to get the rest of answer, use TCP with same server"; what is still out is abandoned.
        for (const s of sockets) s.expire('cancelled');
        return { txs, refused: false, truncated: true };
      }
      const answered = txs.filter((x) => x.rcode >= 0);
      const usable = answered.some((x) => !PROBLEM_RCODES.has(x.rcode));
      const complete = answered.length === templates.length;
      for (const s of sockets) s.expire('timeout');
      if (complete || answered.length === 0 || templates.length === 1) return { txs, refused: false };
      // Timed out with one of two replies: glibc's adaptive switch.
      if (usable && !mode.singleRequest && !mode.reopen) {
        mode.singleRequest = true;
        switches.singleRequest++;
        continue;
      }
      if (usable && !mode.reopen) {
        mode.reopen = true;
        switches.singleRequestReopen++;
        sock = await EmuSocket.open(sh, ns);
        sockets.push(sock);
        continue;
      }
      return { txs, refused: false };
    }
  } finally {
    for (const s of sockets) s.close();
  }
}

function planFor(sh: Shared, conf: ResolvConf, name: string): Plan {
  let plan = sh.plans.get(name);
  if (plan === undefined) {
    const expansion = expandName(name, conf);
    // A candidate the libc cannot encode is never sent: no template for it.
    plan = { expansion, templates: expansion.candidates.map((c) => (c.sent ? c.types.map((t) => makeTemplate(c.fqdn, t as RecordType)) : [])) };
    sh.plans.set(name, plan);
  }
  return plan;
}

/** The resolver's per-try timeout in seconds: --timeout, else the file's `options timeout:`. */
function timeoutSeconds(o: ResolverEmulationOptions): number {
  return o.timeoutSeconds ?? o.conf.options.timeout;
}

/**
 * glibc send_dg's wait for nameserver `ns` of `nscount` (res_send.c):
 * seconds = (retrans << ns) / nscount for ns > 0, at least 1 second. A fractional
 * --timeout (glibc itself only has whole seconds) takes the same formula in
 * milliseconds, without the rounding: --timeout 0.5 waits 500 ms.
 */
export function glibcTryBudgetMs(timeoutS: number, ns: number, nscount: number): number {
  if (Number.isInteger(timeoutS)) {
    let seconds = timeoutS << ns;
    if (ns > 0) seconds = Math.floor(seconds / nscount);
    if (seconds <= 0) seconds = 1;
    return seconds * 1000;
  }
  let ms = timeoutS * 1000 * 2 ** ns;
  if (ns > 0) ms /= nscount;
  return Math.max(1, ms);
}

/** glibc __res_context_send for one name: attempts x nameservers, each with its time budget. */
async function glibcResSend(sh: Shared, o: ResolverEmulationOptions, templates: QueryTemplate[], offset: number, mode: GlibcMode, switches: LookupStats['modeSwitches']): Promise<CandidateResult> {
  const nscount = o.nameservers.length;
  const retrans = timeoutSeconds(o);
  let allRefused = true;
  for (let attempt = 0; attempt < o.conf.options.attempts; attempt++) {
    for (let shift = 0; shift < nscount; shift++) {
      const ns = (shift + offset) % nscount;
      const budgetMs = glibcTryBudgetMs(retrans, ns, nscount);
      let r: { txs: Tx[]; refused: boolean; truncated?: boolean } = o.conf.options.useVc
        ? await sendVc(sh, o.nameservers[ns]!, templates, budgetMs)
        : await glibcSendDg(sh, o.nameservers[ns]!, templates, budgetMs, mode, switches);
      if (r.truncated) {
        // res_send: v_circuit set by a TC reply, "goto same_ns" over TCP.
        sh.st.tcpRetries += templates.length;
        r = await sendVc(sh, o.nameservers[ns]!, templates, budgetMs);
      }
      if (!r.refused) allRefused = false;
      const c = classify(r.txs);
      if (c.kind !== 'timeout' && !r.refused) return c;
    }
  }
  return allRefused ? { kind: 'error', code: 'ECONNREFUSED' } : { kind: 'timeout' };
}

async function glibcLookup(sh: Shared, o: ResolverEmulationOptions, name: string, mode: GlibcMode, switches: LookupStats['modeSwitches']): Promise<LookupOutcome> {
  const { expansion, templates } = planFor(sh, o.conf, name);
  const offset = o.conf.options.rotate ? sh.rotateOffset++ % o.nameservers.length : 0;
  const send = (i: number): Promise<CandidateResult> => glibcResSend(sh, o, templates[i]!, offset, mode, switches);
  let sawServfail = false;
  let sawNodata = false;
  for (const [i, cand] of expansion.candidates.entries()) {
    if (!cand.sent) continue;
    const result = await send(i);
    if (result.kind === 'answer') return 'answer';
    if (result.kind === 'nxdomain') continue;
    if (result.kind === 'nodata') {
      sawNodata = true;
      continue;
    }
    if (result.kind === 'servfail') {
      sawServfail = true;
      continue;
    }
    // A timeout, REFUSED or an error ends the search loop; glibc then still
    // tries the name as written if it has not yet (res_query.c, after the loop).
    const asIs = expansion.candidates.findIndex((c2) => c2.reason === 'as-is-last');
    if (asIs >= 0 && cand.reason === 'search') {
      const last = await send(asIs);
      if (last.kind === 'answer') return 'answer';
    }
    return result.kind === 'timeout' ? 'timeout' : 'refused';
  }
  if (sawNodata) return 'nodata';
  if (sawServfail) return 'servfail';
  return 'nxdomain';
}

async function muslLookup(sh: Shared, o: ResolverEmulationOptions, name: string): Promise<LookupOutcome> {
  const conf = o.conf;
  const { expansion, templates: plan } = planFor(sh, conf, name);
  const timeoutMs = timeoutSeconds(o) * 1000;
  const attempts = Math.max(1, conf.options.attempts);
  const retryMs = timeoutMs / attempts;
  // musl uses one IPv6 socket with v4-mapped addresses when any nameserver is IPv6.
  const family = o.nameservers.some((n) => net.isIPv6(n.host)) ? 'udp6' : 'udp4';
  const servers = o.nameservers.map((n) => (family === 'udp6' && net.isIPv4(n.host) ? { host: `::ffff:${n.host}`, port: n.port } : n));
  for (const [i, cand] of expansion.candidates.entries()) {
    // __res_mkquery failed: name_from_dns returns EAI_NONAME and the lookup ends.
    if (!cand.sent) return 'nxdomain';
    const templates = plan[i]!;
    const ids = templates.map(() => randomId());
    const sock = await EmuSocket.open(sh, undefined, family);
    try {
      const start = performance.now();
      const answered = new Map<number, Tx>();
      const servfailRetried = new Set<string>();
      for (let round = 0; ; round++) {
        const roundTxs: Array<{ tx: Tx; q: number; ns: Nameserver }> = [];
        let truncated: { q: number; ns: Nameserver } | undefined;
        templates.forEach((t, q) => {
          if (answered.has(q)) return;
          for (const ns of servers) roundTxs.push({ tx: sock.send(t, ids[q]!, ns), q, ns });
        });
        const end = Math.min(start + timeoutMs, start + (round + 1) * retryMs);
        const scan = (): boolean => {
          for (const { tx, q, ns } of roundTxs) {
            if (tx.rcode < 0 || answered.has(q)) continue;
            if (tx.tc) {
              truncated = { q, ns };
              return true;
            }
            if (tx.rcode === 2 && !servfailRetried.has(`${q}/${ns.host}`)) {
              servfailRetried.add(`${q}/${ns.host}`);
              roundTxs.push({ tx: sock.send(templates[q]!, ids[q]!, ns), q, ns });
              continue;
            }
            if (tx.rcode === 0 || tx.rcode === 3 || tx.rcode === 2) answered.set(q, tx);
          }
          return answered.size === templates.length;
        };
        for (;;) {
          await sock.waitFor(scan, end);
          if (truncated === undefined) break;
          // res_msend (musl 1.2.4+): a truncated answer is asked again over TCP, same server, in the time left.
          const { q, ns } = truncated as { q: number; ns: Nameserver };
          truncated = undefined;
          for (const { tx, q: q2 } of roundTxs) {
            if (!tx.done && q2 === q) {
              tx.done = true;
              sh.st.cancelled++;
            }
          }
          sh.st.tcpRetries++;
          const left = Math.max(1, start + timeoutMs - performance.now());
          const host = ns.host.startsWith('::ffff:') ? ns.host.slice(7) : ns.host;
          const r = await sendVc(sh, { host, port: ns.port }, [templates[q]!], left);
          const tx = r.txs[0];
          answered.set(q, tx !== undefined && tx.rcode >= 0 ? tx : { id: 0, t: templates[q]!, sentAt: 0, done: true, rcode: -1, ancount: 0, tc: false });
          if (answered.size === templates.length) break;
        }
        // Copies still out for a query another copy answered are cancelled; the rest time out.
        for (const { tx, q } of roundTxs) {
          if (tx.done) continue;
          tx.done = true;
          if (answered.has(q)) sh.st.cancelled++;
          else sh.st.timeouts++;
        }
        if (answered.size === templates.length || performance.now() >= start + timeoutMs || sock.error !== undefined) break;
      }
      if (sock.error !== undefined) {
        sock.expire(sock.error);
        return 'error';
      }
      const txs = [...answered.values()].filter((t) => t.rcode >= 0);
      if (txs.length < templates.length || txs.some((t) => t.rcode === 2)) return txs.length < templates.length ? 'timeout' : 'servfail';
      if (txs.some((t) => t.rcode === 0 && t.ancount > 0)) return 'answer';
      if (txs.some((t) => t.rcode === 3)) continue;
      continue; // NODATA: musl goes on to the next name
    } finally {
      sock.close();
    }
  }
  return 'nxdomain';
}

export async function runResolverEmulation(o: ResolverEmulationOptions): Promise<{ engine: EngineResult; lookups: LookupStats }> {
  const sh: Shared = {
    plans: new Map(),
    st: { sent: 0, answered: 0, timeouts: 0, slow: 0, late: 0, wrongId: 0, wrongQuestion: 0, malformed: 0, truncated: 0, tcpRetries: 0, cancelled: 0 },
    hist: new Histogram('us', LATENCY_MARKS_US),
    rcodes: new Counters(),
    errors: new Counters(),
    slowMs: o.slowMs,
    onSlow: o.onSlow,
    rotateOffset: 0,
    ports: new Set(),
  };
  if (o.nameservers.length === 0) throw new UserError('no nameservers to send to', 'give --server, or a resolv.conf with a nameserver line');
  const timeoutMs = timeoutSeconds(o) * 1000;
  const lookupHist = new Histogram('us', [...LATENCY_MARKS_US, timeoutMs * 1000]);
  const snmpBefore = readUdpSnmp();
  const outcomes = new Counters();
  const switches = { singleRequest: 0, singleRequestReopen: 0 };
  const c = Math.max(1, Math.floor(o.concurrency));
  const total = o.total ?? Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  const deadline = o.durationMs !== undefined ? t0 + o.durationMs : Number.POSITIVE_INFINITY;
  const interval = o.qps !== undefined && o.qps > 0 ? 1000 / o.qps : 0;
  let started = 0;
  let interrupted = false;
  let fatal: unknown;
  const baseMode = (): GlibcMode => ({
    singleRequest: o.singleRequest ?? (o.conf.options.singleRequest || o.conf.options.singleRequestReopen),
    reopen: o.singleRequestReopen ?? o.conf.options.singleRequestReopen,
  });

  const progress = o.onProgress
    ? setInterval(() => {
        o.onProgress?.({ sent: sh.st.sent, answered: sh.st.answered, timeouts: sh.st.timeouts, errors: sh.errors.total, inFlight: 0, elapsedMs: performance.now() - t0 });
      }, o.progressEveryMs ?? 500)
    : undefined;

  const worker = async (): Promise<void> => {
    const slotMode = baseMode();
    for (;;) {
      if (fatal !== undefined || o.signal?.aborted) {
        if (o.signal?.aborted) interrupted = true;
        return;
      }
      const now = performance.now();
      if (started >= total || now >= deadline) return;
      const k = started++;
      let scheduledAt = now;
      if (interval > 0) {
        scheduledAt = t0 + k * interval;
        if (scheduledAt > now) await new Promise((r) => setTimeout(r, scheduledAt - now));
      }
      const name = o.names[k % o.names.length]!;
      const mode = o.longLived ? slotMode : baseMode();
      let outcome: LookupOutcome;
      try {
        outcome = o.conf.libc === 'musl' ? await muslLookup(sh, o, name) : await glibcLookup(sh, o, name, mode, switches);
      } catch (err) {
        fatal = err;
        return;
      }
      outcomes.add(outcome);
      const tookMs = performance.now() - scheduledAt;
      lookupHist.record(tookMs * 1000);
      if (tookMs > o.slowMs) {
        o.onSlow?.({
          time: new Date().toISOString(),
          kind: 'lookup',
          name,
          type: 'lookup',
          server: o.nameservers.map((n) => formatHostPort(n.host, n.port)).join(','),
          sourcePort: 0,
          rcode: outcome,
          latencyMs: Number(tookMs.toFixed(3)),
        });
      }
    }
  };
  await Promise.all(Array.from({ length: c }, () => worker()));
  if (progress) clearInterval(progress);
  if (fatal !== undefined) throw fatal;
  const durationMs = performance.now() - t0;
  const { cancelled, ...st } = sh.st;
  return {
    engine: {
      ...st,
      errors: sh.errors.toJSON(),
      unattributedErrors: {},
      rcodes: sh.rcodes.toJSON(),
      histogram: sh.hist,
      durationMs,
      interrupted,
      sourcePorts: sh.ports.size,
      localDrops: { ownSockets: null, namespace: snmpDelta(snmpBefore, readUdpSnmp()), recvBufferBytes: null },
    },
    lookups: {
      libc: o.conf.libc,
      lookups: lookupHist.count,
      outcomes: outcomes.toJSON(),
      lookupLatencyMs: lookupHist.summaryIn(1000),
      timeoutMs,
      stalls: { over1s: lookupHist.countAtOrAbove(1_000_000), over5s: lookupHist.countAtOrAbove(5_000_000) },
      overTimeout: lookupHist.countAtOrAbove(timeoutMs * 1000),
      modeSwitches: switches,
      cancelled,
      histogram: lookupHist.toJSON(),
    },
  };
}
