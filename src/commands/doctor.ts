/**
 * `k8sdiag doctor`: one command that probes, correlates and names the cause of DNS stalls with its remedy. It composes
 * the other commands: resolv (the pod's resolv.conf and the names it sends), svc (the DNS Service's endpoints, where
 * the node's rules are readable), conntrack (counters before and after, per CPU, with a baseline), and dnsbench (the
 * probes of ../doctor/plan.ts). Bounded: it says what it will send before sending, and reports what it sent.
 */
import { isIP } from 'node:net';
import { conntrackFindings } from '../conntrack/analyse.js';
import type { TableState } from '../conntrack/analyse.js';
import { hasPodNetworkInterfaces, readInterfaces } from '../host/conntrack.js';
import { readTargetFacts } from '../doctor/context.js';
import type { TargetFacts } from '../doctor/context.js';
import { planProbes, runProbes } from '../doctor/plan.js';
import type { ProbeSummary } from '../doctor/probes.js';
import { VERDICT_ORDER, attribute } from '../doctor/rules.js';
import type { AttributionInput } from '../doctor/rules.js';
import type { CorednsEvidence } from '../doctor/rule-kit.js';
import type { CounterEvidence } from '../doctor/background.js';
import { conntrackEvidence, corednsEvidence, nicEvidence, readable, sampleBaseline, takeSample } from './doctor-counters.js';
import type { InsertFailedEvidence } from '../doctor/race.js';
import { UsageError, UserError } from '../errors.js';
import { formatHostPort } from '../dns/wire.js';
import { CATALOGUE, sortFindings } from '../findings.js';
import type { Finding } from '../findings.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import { loadResolvConf } from '../input.js';
import type { RunControl, Source } from '../input.js';
import { NODELOCALDNS_IP } from '../kubernetes.js';
import { parseResolvConf } from '../resolv/parse.js';
import type { CounterDelta, CounterRecord } from '../stats/index.js';
import { parseServer } from './dnsbench.js';
import { counterDeltas } from './conntrack.js';
import { runResolv } from './resolv.js';
import { runSvc } from './svc.js';
import { percent } from '../stats/index.js';
import { beginWatch, finishWatch, realTrafficLine } from '../doctor/watched.js';
import { kernelLine, startKernel } from '../doctor/kernel.js';
import type { KernelSeen } from '../doctor/kernel.js';
import type { Watched } from '../doctor/watched.js';

export interface DoctorInput extends RunControl {
  /** The pod's resolv.conf (default /etc/resolv.conf). */
  resolv?: Source;
  /** Names to look up (default google.com: an external name through the search list). */
  names?: string[];
  /** Upper bound on the probes' time, seconds (default 30). */
  budgetSeconds?: number;
  /** The DNS Service's endpoints, host[:port], where the node's rules cannot be read. */
  endpoints?: string[];
  /** The DNS port (53; tests use others). */
  port?: number;
  /** The workload's libc: given, or auto (read from the other processes' filesystems, or from --pid's). */
  libc?: 'glibc' | 'musl' | 'auto';
  /** The workload's process, whose filesystem tells its libc. */
  pid?: number;
  /** CoreDNS /metrics pages to read before and after the probes (default: each endpoint's :9153/metrics). */
  corednsMetrics?: string[];
  /**
   * Watch the real pods' DNS (../doctor/watched.ts): S seconds before the probes; 0 not at all. Unset: during the
   * probes, on a node where tcpdump is installed.
   */
  watchS?: number;
  /** Run drops' sources (the kernel's drops, conntrack's events) during the probes, and say what they show. */
  kernel?: boolean;
}

export interface DoctorStep {
  step: 'context' | 'resolv' | 'path' | 'conntrack' | 'nic' | 'coredns' | 'watch' | 'kernel' | 'probes';
  ok: boolean;
  /** What it found, or what it could not do and why. */
  note: string;
}

export interface DoctorResult extends ResultHeader {
  command: 'doctor';
  /** One to three lines: the cause and its remedy, or that nothing is wrong; then whether the real pods' traffic shows it. */
  verdict: string[];
  context: TargetFacts & {
    /**
     * Whose network namespace doctor ran in: a node's (kube-proxy's rules are there), a pod's (no rules, the
     * nameserver is a Service IP), or unknown (no rules, and no Service IP in the resolv.conf).
     */
    view: 'node' | 'pod' | 'unknown';
    resolvFile: string;
    nameservers: string[];
    search: string[];
    ndots: number;
    timeoutS: number;
    nodeLocalDNS: boolean;
  };
  /** The DNS Service behind the nameserver, with its endpoints and shares, and how it was found. */
  path: { found: 'rules' | '--endpoints' | null; service: string | null; clusterIP: string | null; endpoints: Array<{ address: string; share: number | null }> };
  conntrack: {
    before: CounterRecord | null;
    after: CounterRecord | null;
    deltas: Record<string, CounterDelta>;
    /** insert_failed before the probes, over an interval of its own: its background rate (node view only). */
    baseline: { seconds: number; deltas: Record<string, CounterDelta> } | null;
    table: TableState | null;
  } | null;
  /** What each CoreDNS counted during the probes (its /metrics page read before and after), and over the baseline before them. */
  coredns: CorednsEvidence[];
  /** The real pods' DNS as a capture saw it (null: not watched; the step says why). */
  watched: Watched | null;
  /** With --kernel: what the kernel saw during the probes (null: not asked, or not readable; the step says why). */
  kernel: KernelSeen | null;
  /** What doctor said it would send, before sending. */
  plan: string;
  /** What it sent: queries and lookups by probe kind, and the rounds. */
  sent: { queries: number; lookups: number; probes: number; rounds: number };
  probes: ProbeSummary[];
  steps: DoctorStep[];
  findings: Finding[];
  /** Stopped by a signal: the evidence is what was gathered until then. */
  interrupted: boolean;
  /** Set when doctor could not probe at all (no socket, nothing to send to): exit 2. */
  couldNotRun: string | null;
}

/** --endpoints values, checked before anything is sent: an IP address, [v6]:port or v4:port. */
export function checkEndpoints(raw: readonly string[], port: number): Array<{ host: string; port: number }> {
  return raw.map((e) => {
    const s = parseServer(e, '--endpoints');
    if (isIP(s.host.replace(/%.*$/, '')) === 0) throw new UsageError(`--endpoints ${JSON.stringify(e).slice(1, -1)}: not an IP address (host, host:port or [v6]:port)`);
    return { host: s.host, port: s.port ?? port };
  });
}

export async function runDoctor(input: DoctorInput): Promise<DoctorResult> {
  const header = startHeader('doctor');
  const steps: DoctorStep[] = [];
  const say = (m: string): void => input.onProgress?.(m);
  const names = input.names && input.names.length > 0 ? input.names : ['google.com'];
  const name = names[0]!;
  const budgetMs = (input.budgetSeconds ?? 30) * 1000;
  const port = input.port ?? 53;
  const given = input.endpoints && input.endpoints.length > 0 ? checkEndpoints(input.endpoints, port) : undefined;
  for (const u of input.corednsMetrics ?? []) {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(u).protocol);
    } catch {
      ok = false;
    }
    if (!ok) throw new UsageError(`--coredns-metrics ${JSON.stringify(u).slice(1, -1)}: not an http:// or https:// URL`);
  }

  // 1. Context: the kernel, the namespace, and the workload's libc (not doctor's own).
  const ctx = readTargetFacts({ libc: input.libc ?? 'auto', ...(input.pid !== undefined ? { pid: input.pid } : {}) });
  const libc = ctx.workloadLibc.libc;
  steps.push({
    step: 'context',
    ok: libc !== 'unknown',
    note: `kernel ${ctx.kernel.release} (clash fixes: ${ctx.kernel.clashFixes.join(', ') || 'none'}); libc ${libc}${ctx.workloadLibc.version ? ` ${ctx.workloadLibc.version}` : ''} (${ctx.workloadLibc.from})` +
      (libc === 'unknown' ? ": lookups are emulated as glibc's and as musl's, and remedies are given for both" : '') +
      `; network namespace ${ctx.netns.sameAsPid1 === null ? 'unknown' : ctx.netns.sameAsPid1 ? "the same as PID 1's" : "not PID 1's"}`,
  });

  // 2. resolv.conf, read with the workload's libc's rules (glibc's when it is not known, and musl's for its probe).
  const source = input.resolv ?? { kind: 'file', path: '/etc/resolv.conf' };
  const loaded = await loadResolvConf(source);
  const readAs = libc === 'musl' ? 'musl' : 'glibc';
  const resolv = await runResolv({ source: { kind: 'text', ...loaded }, libc: readAs, name });
  const conf = parseResolvConf(loaded.text, { libc: readAs });
  const nameservers = conf.nameservers.slice(0, 3);
  if (nameservers.length === 0) throw new UserError(`${loaded.origin} names no nameserver: there is nothing to probe`, 'give --resolv with the pod\'s resolv.conf');
  steps.push({ step: 'resolv', ok: true, note: `${loaded.origin} (read as ${readAs} reads it): nameservers ${nameservers.join(', ')}; search ${conf.search.join(' ') || '(none)'}; ndots:${conf.options.ndots} timeout:${conf.options.timeout}` });

  // 3. The path: the DNS Service (by its cluster IP) in the node's rules, else --endpoints.
  let path: DoctorResult['path'] = { found: null, service: null, clusterIP: null, endpoints: [] };
  let rules: Awaited<ReturnType<typeof runSvc>> | undefined;
  let rulesError: string | undefined;
  try {
    rules = await runSvc({ source: { kind: 'live' } });
  } catch (err) {
    rulesError = err instanceof UserError ? err.message : String(err);
  }
  const rulesVisible = rules !== undefined && rules.modes.length > 0;
  // A node shows kube-proxy's rules, or, without them (an eBPF kube-proxy replacement), the host side of its pods'
  // network (CNI veths, bridges, overlay devices); a pod's own namespace neither. Dumps refused tell nothing.
  const interfaces = await readInterfaces();
  const view: DoctorResult['context']['view'] =
    rulesVisible || (interfaces !== undefined && hasPodNetworkInterfaces(interfaces))
      ? 'node'
      : rulesError !== undefined && /permission|not permitted|iptables-save is not installed/i.test(rulesError)
        ? 'unknown'
        : 'pod';
  if (given !== undefined) {
    path = { found: '--endpoints', service: null, clusterIP: nameservers[0] ?? null, endpoints: input.endpoints!.map((address) => ({ address, share: null })) };
    steps.push({ step: 'path', ok: true, note: `endpoints given: ${input.endpoints!.join(', ')}` });
  } else if (rules !== undefined) {
    const dns = rules.services.find((s) => s.clusterIP !== null && nameservers.includes(s.clusterIP) && (s.protocol === 'udp' || s.protocol === null) && (s.port === port || s.port === null));
    if (dns) {
      path = { found: 'rules', service: dns.id, clusterIP: dns.clusterIP, endpoints: dns.endpoints.map((e) => ({ address: e.address, share: e.share })) };
      steps.push({ step: 'path', ok: true, note: `${dns.id} at ${dns.clusterIP}: ${dns.endpoints.map((e) => `${e.address} ${percent(e.share)}`).join(', ')}` });
    } else {
      steps.push({ step: 'path', ok: false, note: `no Service with cluster IP ${nameservers.join(' or ')} in this node's rules (a pod's network namespace, NodeLocalDNS, or not a Service): give --endpoints to probe them directly` });
    }
  } else {
    steps.push({ step: 'path', ok: false, note: `the node's rules could not be read (${rulesError ?? 'unknown'}): give --endpoints to probe them directly` });
  }
  const endpoints = given ?? path.endpoints.map((e) => {
    const s = parseServer(e.address);
    return { host: s.host, port: s.port ?? port };
  });

  // 4. Where kube-proxy's iptables or nftables rules are (the node's namespace), netfilter NATs the probes here and the
  // race counts each packet it drops in insert_failed; IPVS drops its own way.
  const natHere = rules !== undefined && !rules.modes.includes('ipvs') && rules.modes.some((m) => m === 'iptables' || m === 'nftables');

  // The real pods' DNS: --watch S seconds of it now (before the counters, so their deltas do not include it), or by
  // default on a node, during the probes (below).
  const early = await beginWatch('before', input.watchS, view, input.signal, say);
  steps.push(...early.steps);
  let watched = early.watched;

  // The counters read against their own background: conntrack's where the probes are NATed here, the cloud interface's
  // allowances where the node's interfaces are visible (ethtool -S), CoreDNS's pages (given, else each endpoint's
  // metrics port). Wherever one can be read, an interval before the probes gives its background.
  const pages = input.corednsMetrics && input.corednsMetrics.length > 0 ? input.corednsMetrics : endpoints.map((e) => `http://${formatHostPort(e.host, 9153)}/metrics`);
  const sources = { nic: view === 'node', pages, ...(input.signal ? { signal: input.signal } : {}) };
  const first = await takeSample(sources);
  if ('error' in first.conntrack) steps.push({ step: 'conntrack', ok: false, note: `conntrack not readable: ${first.conntrack.error}` });
  const baselineS = readable(first, natHere) ? Math.min(10, Math.max(1, budgetMs / 3000)) : 0;
  const plan = planProbes({ conf, names, nameservers, port, endpoints, budgetMs, baselineS, clusterDomain: clusterDomainOf(conf.search), ...(libc === 'unknown' ? { muslConf: parseResolvConf(loaded.text, { libc: 'musl' }) } : {}) });
  say(`doctor: will send ${plan.said}`);
  const samples = baselineS > 0 ? await sampleBaseline(first, baselineS, sources) : [first];
  const before = samples[samples.length - 1]!;
  let baseline: NonNullable<DoctorResult['conntrack']>['baseline'] = null;
  if (natHere && samples.length > 1 && !('error' in first.conntrack) && !('error' in before.conntrack)) {
    const seconds = (before.at - first.at) / 1000;
    baseline = { seconds: Number(seconds.toFixed(3)), deltas: counterDeltas(first.conntrack, before.conntrack, seconds) };
  }
  // Known once the probes are done: the rounds decide without them.
  let insertFailed: InsertFailedEvidence | null = null;
  let counters: CounterEvidence[] | null = null;
  let nic: AttributionInput['nic'] = null;
  /** What CoreDNS counted during the probes: null until read (and where no page is). */
  let coredns: CorednsEvidence[] | null = null;
  const ndots = resolv.findings.find((f) => f.code === 'NDOTS_AMPLIFICATION');

  // 5. The probes, in rounds: a first round of every probe, then more of those that would decide a suggestive pattern.
  const during = await beginWatch('during', input.watchS, view, input.signal, say);
  steps.push(...during.steps);
  let kernel: KernelSeen | null = null;
  const kernelRun = input.kernel === true ? await startKernel(input.signal) : undefined;
  if (kernelRun !== undefined && 'error' in kernelRun) steps.push({ step: 'kernel', ok: false, note: `the kernel's evidence not read: ${kernelRun.error}` });
  else if (kernelRun !== undefined) say("doctor: the kernel's drops and conntrack's events are read during the probes");
  let run: Awaited<ReturnType<typeof runProbes>>;
  try {
    run = await runProbes(plan, {
      ...(input.signal ? { signal: input.signal } : {}),
      say,
      decide: (probes, final) => attribute(attributionInput(probes, final)).more,
    });
  } finally {
    // Stopped on every path: a tcpdump left running would keep doctor from exiting.
    if (during.watching !== undefined) {
      const f = await finishWatch(during.watching);
      watched = f.watched;
      steps.push(f.step);
    }
    if (kernelRun !== undefined && !('error' in kernelRun)) {
      const k = await kernelRun.finish();
      if ('error' in k) steps.push({ step: 'kernel', ok: false, note: `the kernel's evidence not read: ${k.error}` });
      else {
        kernel = k;
        steps.push({ step: 'kernel', ok: true, note: `${k.drops === null ? "the kernel's drops not traced" : `${k.drops} DNS packets dropped on this node`}; ${k.flows === null ? "conntrack's events not read" : `${k.flows.flows} DNS flows, ${k.flows.unreplied} never replied`} in ${k.seconds} s` });
      }
    }
  }
  steps.push(...run.steps);

  // 6. The counters after, and what moved, per CPU, each against its background.
  const after = await takeSample(sources);
  if (pages.length > 0) {
    const c = corednsEvidence(pages, samples, after);
    coredns = c.read;
    const read = c.read.map((d) => d.url);
    steps.push({ step: 'coredns', ok: c.errors.length === 0, note: [read.length > 0 ? `metrics read from ${read.join(', ')}${baselineS > 0 ? ` (and over ${baselineS.toFixed(0)} s before the probes)` : ''}` : '', c.errors.length > 0 ? `not read: ${c.errors.join('; ')}` : ''].filter((x) => x !== '').join('; ') });
  }
  if (first.nic !== undefined && after.nic !== undefined) {
    nic = nicEvidence(samples, after);
    const read = after.nic.samples.filter((x) => Object.keys(x.counters).length > 0).map((x) => x.iface);
    steps.push({ step: 'nic', ok: read.length > 0, note: read.length > 0 ? `allowance counters read on ${read.join(', ')}` : `no allowance counters: ${after.nic.unavailable.join('; ')}` });
  }
  let conntrack: DoctorResult['conntrack'] = null;
  const findings: Finding[] = [];
  if (!('error' in before.conntrack) && !('error' in after.conntrack)) {
    const seconds = (after.at - before.at) / 1000;
    const deltas = counterDeltas(before.conntrack, after.conntrack, seconds);
    conntrack = { before: before.conntrack.counters, after: after.conntrack.counters, deltas, baseline, table: after.conntrack.table };
    // The counters' background is this namespace's own traffic before the probes: read only where the probes are
    // NATed here (elsewhere a rise is a note: nothing to tell it from the namespace's own traffic).
    counters = conntrackEvidence(natHere ? samples : [before], after);
    const ifd = counters?.find((c) => c.name === 'insert_failed');
    if (natHere && ifd !== undefined && ifd.baseline !== null) insertFailed = { ...ifd, baseline: ifd.baseline };
    // The table's fill is a state read, not a rise: said as conntrack says it.
    const v = { counters: after.conntrack.counters, table: after.conntrack.table, cpus: after.conntrack.cpus, perCpu: after.conntrack.perCpu, kernelLog: { tableFullLines: 0, tableFull: [], netns: [], suppressed: 0 } };
    for (const f of conntrackFindings(v, { origin: 'watch', seconds: Number(seconds.toFixed(3)), deltas, newTableFullLines: 0 })) {
      if (f.code === 'TABLE_PRESSURE') findings.push(f);
    }
  }

  // 7. Attribution, with resolv's own findings about the file.
  findings.push(...resolv.findings.filter((f) => f.code !== 'NDOTS_AMPLIFICATION'));
  function attributionInput(probes: ProbeSummary[], final: boolean): AttributionInput {
    return {
      probes,
      service: path.endpoints.length > 0 ? { id: path.service, clusterIP: path.clusterIP ?? '', endpoints: path.endpoints.map((e) => e.address) } : null,
      libc,
      clashFixes: ctx.kernel.clashFixes,
      insertFailed,
      conntrack: counters,
      nameservers: nameservers.map((h) => formatHostPort(h, port)),
      nodeLocalDNS: nameservers[0] === NODELOCALDNS_IP,
      name,
      ndots,
      nic,
      coredns,
      final,
    };
  }
  const couldNotRun = run.probes.length === 0 && !run.interrupted ? `no probe could run: ${run.steps.map((s) => s.note).join('; ') || 'the budget was spent before the first'}` : null;
  if (couldNotRun === null) findings.push(...attribute(attributionInput(run.probes, true)).findings);
  // No DNS seen is said in the real-traffic line, in doctor's words.
  if (watched !== null) findings.push(...watched.findings.filter((f) => f.severity !== 'info' && f.code !== 'NO_DNS_SEEN'));
  const sorted = sortFindings(findings);
  const verdict = verdictOf(sorted, couldNotRun, run.probes, run.notRun.length);
  if (watched !== null && couldNotRun === null) verdict.push(realTrafficLine(causesOf(sorted), watched));
  // The kernel sees every namespace of the node: only the drops toward the servers doctor probed speak of its probes.
  const targets = new Set([...nameservers.map((h) => formatHostPort(h, port)), ...endpoints.map((e) => formatHostPort(e.host, e.port))]);
  if (kernel !== null && couldNotRun === null) verdict.push(kernelLine(causesOf(sorted), kernel, targets));
  if (run.interrupted) verdict.unshift('Interrupted: the verdict rests on the probes that ran until then.');
  return {
    ...header.finish(),
    command: 'doctor',
    verdict,
    context: { ...ctx, view, resolvFile: loaded.origin, nameservers, search: conf.search, ndots: conf.options.ndots, timeoutS: conf.options.timeout, nodeLocalDNS: nameservers.includes(NODELOCALDNS_IP) },
    path,
    conntrack,
    coredns: coredns ?? [],
    watched,
    kernel,
    plan: plan.said,
    sent: run.sent,
    probes: run.probes,
    steps,
    findings: sorted,
    interrupted: run.interrupted,
    couldNotRun,
  };
}

/** The cluster's domain from a ClusterFirst search list (NS.svc.DOMAIN svc.DOMAIN DOMAIN); null when none shows it. */
export function clusterDomainOf(search: readonly string[]): string | null {
  for (const d of search) {
    const m = /^(?:[^.]+\.)?svc\.(.+?)\.?$/.exec(d);
    if (m) return m[1]!;
  }
  return null;
}

/** The findings that name a cause of stalls, in the rules table's order. */
function causesOf(findings: readonly Finding[]): Finding[] {
  return findings.filter((f) => f.severity !== 'info' && VERDICT_ORDER.includes(f.code)).sort((a, b) => VERDICT_ORDER.indexOf(a.code) - VERDICT_ORDER.indexOf(b.code));
}

/** One to three lines: the causes found, in the rules table's order, with the first remedy; or that nothing is wrong. */
export function verdictOf(findings: readonly Finding[], couldNotRun: string | null, probes: readonly ProbeSummary[] = [], notRun = 0): string[] {
  if (couldNotRun !== null) return [`Could not probe DNS: ${couldNotRun}`];
  const causes = causesOf(findings);
  if (causes.length === 0) {
    // The real traffic's own findings have their line after the verdict.
    const other = findings.filter((f) => f.severity !== 'info' && CATALOGUE[f.code].command !== 'watch');
    const stalled = probes.reduce((n, p) => n + p.stalled, 0);
    const units = probes.reduce((n, p) => n + p.units, 0);
    const none =
      notRun > 0
        ? `No cause of DNS stalls found in the ${probes.length} probes that ran; ${notRun} the budget left out (a larger --budget runs them).`
        : stalled === 0
          ? 'No cause of DNS stalls found: every probe was answered in time.'
          : `No cause of DNS stalls found: ${stalled} of ${units} queries and lookups went unanswered in time, no more than chance loss explains.`;
    return other.length === 0 ? [none] : [`No cause of DNS stalls found; ${other.length} configuration finding(s) below.`];
  }
  return causes.slice(0, 3).map((f) => `${f.code}: ${CATALOGUE[f.code].means}${subjectLabel(f)}${f.remedy ? ` -> ${f.remedy.split(';')[0]}` : ''}`);
}

function subjectLabel(f: Finding): string {
  const s = f.subject;
  if (s.kind === 'endpoint') return ` (${s.address}${s.service ? `, ${s.service}` : ''})`;
  if (s.kind === 'nameserver') return ` (${s.address})`;
  if (s.kind === 'name') return ` (${s.name})`;
  if (s.kind === 'counter') return ` (${s.name})`;
  return '';
}
