/**
 * A seeded simulator of the evidence doctor's plan gathers in a world whose causes are known: its probes (the sizes,
 * groups and datagrams of src/doctor/plan.ts), the extra rounds the rules ask for while a time model of the budget
 * lasts, and the node's counters with their backgrounds. decide() (src/doctor/rules.ts attribute) is run on it as
 * doctor runs it. Written apart from the rules: it models packets, not the rules' tests.
 *
 * The model, per datagram: a query and its answer each cross the path (lost with the world's path loss, on every
 * path or only through the Service's DNAT; independent or in bursts), the server may lose the query (every server, one
 * endpoint, one record type, past a rate), and answers may come after the timeout. A lookup stalls when any of its
 * queries or answers is lost; it sends an A and an AAAA for each name of its search list until the name's answer.
 * TCP lookups retransmit: one stalls only when a segment is lost three times in a row.
 */
import { mulberry32 } from '../../src/stats/random.js';
import { attribute } from '../../src/doctor/rules.js';
import type { AttributionInput, MoreProbes } from '../../src/doctor/rules.js';
import { EXTRA_ROUNDS, LOOKUPS, PACED_QUERIES, PHASES, RAW_QUERIES, ROUND_GROWTH } from '../../src/doctor/plan.js';
import type { ProbeSummary } from '../../src/doctor/probes.js';
import type { CounterEvidence } from '../../src/doctor/background.js';
import type { CorednsEvidence } from '../../src/doctor/rule-kit.js';
import type { Finding } from '../../src/findings.js';
import type { Truth } from './outcome.js';

export interface World {
  name: string;
  /** What a right verdict is (outcomeOf). */
  truth: Truth;
  /** Where the default budget decides less often than the bar (95%): the share of runs that must still be right. */
  minRight?: number;
  search?: number;
  ndots?: number;
  nameservers?: number;
  /** DNS endpoints probed directly (0: not known). */
  endpoints?: number;
  nodeLocal?: boolean;
  libc?: 'glibc' | 'musl' | 'unknown';
  /** The kernel has the clash fixes (4.19, 5.0, 5.6, 5.10). */
  fixes?: boolean;
  /** doctor on the node (the probes NATed there: insert_failed read with a baseline) or in a pod. */
  view?: 'node' | 'pod';
  timeoutS?: number;
  /** Per-datagram loss on the path: every path, or only through the Service IP's DNAT; one or both directions. */
  path?: { rate: number; where: 'all' | 'dnat'; dir?: 'both' | 'query' | 'answer'; burst?: boolean };
  /** Every server loses this share of the queries it gets (UDP and TCP). */
  server?: number;
  /** One endpoint loses this share of the queries it gets. */
  endpoint?: { index: number; rate: number };
  /** Queries of one type lost at the servers. */
  type?: { type: 'A' | 'AAAA'; rate: number };
  /** A token bucket per server: queries in doctor's bursts are lost with this chance, paced ones never. */
  rateLimit?: number;
  /** This share of answers comes after the timeout. */
  late?: number;
  tcpBlocked?: boolean;
  /** Names outside the cluster's domain: a share answered SERVFAIL, or every answer this late (ms). */
  upstream?: { servfail?: number; slowMs?: number };
  /** The servers answer this share of every query SERVFAIL. */
  servfail?: number;
  /** The second of two queries sent at once from one socket through the DNAT is dropped with this chance. */
  race?: number;
  /** A server or hop drops the second of two queries sent at once, on every path (not conntrack). */
  parallelDrop?: number;
  /** The node's counters' own background, per second, and whether it comes in bursts. */
  background?: { insertFailed?: number; nic?: number; corednsServfail?: number; corednsRejects?: number; bursty?: boolean };
  /** The interface's allowance limit drops this share of every packet, and counts each drop. */
  nicLimit?: number;
}

const EXT = 0; // the external name (google.com)
const IN = 1; // the in-cluster name

interface Probe {
  label: string;
  kind: ProbeSummary['kind'];
  mode: ProbeSummary['mode'];
  qtype: 'A' | 'AAAA' | null;
  group: MoreProbes;
  units: number;
  /** raw/endpoint: the server (-1: the nameserver, else the endpoint); lookups: names looked up. */
  endpoint: number;
  paced: boolean;
  names: number; // for lookups: how many names are tried (search list + as written)
  nameKind: typeof EXT | typeof IN;
  direct: boolean;
  tcp: boolean;
  parallel: boolean;
  nameserver: number;
}

// The plan's sizes: what is modelled is the plan doctor runs.
const RAW = RAW_QUERIES;
const PACED = PACED_QUERIES;
const GROWTH = ROUND_GROWTH;

function planOf(w: Required<Pick<World, 'search' | 'ndots' | 'nameservers' | 'endpoints' | 'libc'>>): Probe[] {
  const out: Probe[] = [];
  const base = { endpoint: -1, paced: false, names: 1, nameKind: EXT as 0 | 1, direct: false, tcp: false, parallel: false, nameserver: 0, qtype: null, mode: null };
  for (let ns = 0; ns < w.nameservers; ns++) {
    for (const t of ['A', 'AAAA'] as const) out.push({ ...base, label: `raw ${t} ${ns}`, kind: 'raw', qtype: t, group: 'raw', units: RAW, nameserver: ns });
  }
  for (let ns = 0; ns < w.nameservers; ns++) out.push({ ...base, label: `paced ${ns}`, kind: 'raw', qtype: 'A', group: 'rate', units: PACED, paced: true, nameserver: ns });
  // google.com has one dot: through the search list when ndots > 1.
  const searched = 1 < w.ndots ? w.search + 1 : 1;
  const look = { ...base, kind: 'lookups' as const, group: 'lookup-modes' as const, units: LOOKUPS, names: searched };
  out.push({ ...look, label: 'parallel', mode: 'parallel', parallel: true });
  if (w.libc === 'unknown') out.push({ ...look, label: 'musl', mode: 'parallel-musl', parallel: true });
  out.push({ ...look, label: 'reopen', mode: 'single-request-reopen' });
  out.push({ ...look, label: 'tcp', mode: 'tcp', tcp: true });
  out.push({ ...look, label: 'dot', mode: 'trailing-dot', parallel: true, names: 1, group: 'upstream' });
  if (w.search > 0) out.push({ ...look, label: 'in-cluster', mode: 'in-cluster', parallel: true, names: 1, nameKind: IN, group: 'upstream' });
  for (let e = 0; e < w.endpoints; e++) out.push({ ...base, label: `endpoint ${e}`, kind: 'endpoint', group: 'endpoints', units: RAW, endpoint: e });
  for (let e = 0; e < w.endpoints; e++) out.push({ ...look, label: `direct ${e}`, mode: 'parallel-direct', parallel: true, group: 'direct', endpoint: e, direct: true });
  return out;
}

interface Run {
  p: Probe;
  s: ProbeSummary;
  lat: number[];
  /** The units' time, summed (ms). */
  busyMs: number;
}

class Sim {
  readonly rng: () => number;
  private bad = false; // Gilbert-Elliott state for bursty loss
  raceDrops = 0;
  nicDrops = 0;
  constructor(readonly w: World & Required<Pick<World, 'search' | 'ndots' | 'nameservers' | 'endpoints' | 'libc' | 'timeoutS'>>, seed: number) {
    this.rng = mulberry32(seed);
  }

  /** One datagram across the path: lost? `dnat`: it goes through the Service IP. */
  private pathLost(dnat: boolean, dir: 'query' | 'answer'): boolean {
    const p = this.w.path;
    if (this.w.nicLimit !== undefined && this.rng() < this.w.nicLimit) {
      this.nicDrops++;
      return true;
    }
    if (p === undefined || (p.where === 'dnat' && !dnat) || (p.dir !== undefined && p.dir !== 'both' && p.dir !== dir)) return false;
    if (!p.burst) return this.rng() < p.rate;
    // Bursts: a bad state that loses half its packets, entered and left so that the mean loss is `rate`.
    const leave = 0.2;
    const enter = (2 * p.rate * leave) / (1 - 2 * p.rate);
    this.bad = this.bad ? this.rng() >= leave : this.rng() < enter;
    return this.bad && this.rng() < 0.5;
  }

  /** One query and its answer over UDP: 'ok', 'lost', 'late', 'servfail'. */
  udp(o: { dnat: boolean; endpoint: number; qtype: 'A' | 'AAAA'; nameKind: number; fast: boolean; second: boolean; parallelPair: boolean }): 'ok' | 'lost' | 'late' | 'servfail' {
    const w = this.w;
    if (this.pathLost(o.dnat, 'query')) return 'lost';
    if (o.second && o.parallelPair && o.dnat && w.race !== undefined && this.rng() < w.race) {
      this.raceDrops++;
      return 'lost';
    }
    if (o.second && o.parallelPair && !o.dnat && w.race !== undefined && !(w.fixes ?? true) && this.rng() < w.race) {
      this.raceDrops++;
      return 'lost';
    }
    if (o.second && o.parallelPair && w.parallelDrop !== undefined && this.rng() < w.parallelDrop) return 'lost';
    if (o.fast && w.rateLimit !== undefined && this.rng() < w.rateLimit) return 'lost';
    if (w.server !== undefined && this.rng() < w.server) return 'lost';
    if (w.endpoint !== undefined && o.endpoint === w.endpoint.index && this.rng() < w.endpoint.rate) return 'lost';
    if (w.type !== undefined && o.qtype === w.type.type && this.rng() < w.type.rate) return 'lost';
    if (this.pathLost(o.dnat, 'answer')) return 'lost';
    if (w.late !== undefined && this.rng() < w.late) return 'late';
    if (o.nameKind === EXT && w.upstream?.slowMs !== undefined && w.upstream.slowMs >= w.timeoutS * 1000) return 'late';
    if (w.servfail !== undefined && this.rng() < w.servfail) return 'servfail';
    if (o.nameKind === EXT && w.upstream?.servfail !== undefined && this.rng() < w.upstream.servfail) return 'servfail';
    return 'ok';
  }

  /** A TCP exchange: lost only when a segment is lost three times running (or TCP is blocked). */
  tcpLost(dnat: boolean): boolean {
    if (this.w.tcpBlocked) return true;
    if (this.w.server !== undefined && this.rng() < this.w.server) return true;
    for (let seg = 0; seg < 4; seg++) {
      let lost = 0;
      while (lost < 3 && this.pathLost(dnat, seg % 2 === 0 ? 'query' : 'answer')) lost++;
      if (lost >= 3) return true;
    }
    return false;
  }

  endpointOf(p: Probe): number {
    if (p.endpoint >= 0) return p.endpoint;
    // Through the Service IP each source port is pinned to one endpoint, chosen at random.
    return this.w.endpoints > 0 || this.w.endpoint !== undefined ? Math.floor(this.rng() * Math.max(2, this.w.endpoints)) : -1;
  }

  /** A probe's summary before its first unit. */
  start(p: Probe): Run {
    const s: ProbeSummary = {
      label: p.label, kind: p.kind, mode: p.mode, qtype: p.qtype, target: p.endpoint >= 0 ? `10.244.0.${p.endpoint + 2}:53` : `10.96.0.${10 + p.nameserver}:53`,
      sent: 0, answered: 0, timeouts: 0, errors: 0, errorCodes: {}, rcodes: {}, late: 0, units: 0, stalled: 0, failed: 0, over1s: 0, over5s: 0, localDrops: 0,
      meanMs: null, medianMs: null, queriesPerUnit: 1, datagramsPerUnit: p.kind === 'lookups' ? 4 * p.names : 2, singleRequestSwitches: 0, servfailed: 0, rate: p.paced ? 20 : 1000, paced: p.paced, rounds: 1, byRound: [],
    };
    return { p, s, lat: [], busyMs: 0 };
  }

  /** One unit of a probe: a raw query, or a whole lookup. */
  step(run: Run): void {
    const { p, s, lat } = run;
    const w = this.w;
    const dnat = !w.nodeLocal && !p.direct && p.endpoint < 0;
    s.units++;
    if (p.kind !== 'lookups') {
      const qtype = p.qtype ?? (s.units % 2 === 0 ? 'A' : 'AAAA');
      const r = this.udp({ dnat, endpoint: this.endpointOf(p), qtype, nameKind: EXT, fast: !p.paced, second: false, parallelPair: false });
      s.sent++;
      if (r === 'lost' || r === 'late') {
        s.timeouts++;
        s.stalled++;
        if (r === 'late') s.late++;
        run.busyMs += w.timeoutS * 1000;
        return;
      }
      s.answered++;
      const rc = r === 'servfail' ? 'SERVFAIL' : 'NOERROR';
      s.rcodes[rc] = (s.rcodes[rc] ?? 0) + 1;
      if (r === 'servfail') s.servfailed++;
      lat.push(1 + (w.upstream?.slowMs ?? 0));
      run.busyMs += 1 + (w.upstream?.slowMs ?? 0);
      return;
    }
    const endpoint = this.endpointOf(p);
    let stalled = false;
    let servfail = false;
    let ms = 0;
    for (let n = 0; n < p.names; n++) {
      const last = n === p.names - 1;
      const nameKind = last ? p.nameKind : IN; // search-list names are the cluster's own (NXDOMAIN from CoreDNS)
      s.sent += 2;
      ms += 1;
      if (p.tcp) {
        if (this.tcpLost(dnat)) stalled = true;
      } else {
        for (const [k, qtype] of (['A', 'AAAA'] as const).entries()) {
          const r = this.udp({ dnat, endpoint, qtype, nameKind, fast: true, second: k === 1, parallelPair: p.parallel });
          if (r === 'lost' || r === 'late') stalled = true;
          if (r === 'servfail' && last) servfail = true;
        }
        if (last && nameKind === EXT && w.upstream?.slowMs !== undefined) ms += w.upstream.slowMs;
      }
      if (stalled) break;
    }
    if (stalled) {
      s.stalled++;
      s.sent += 2;
      ms += w.timeoutS * 1000;
    } else if (servfail) s.servfailed++;
    s.answered += stalled ? 1 : 2;
    if (ms > 1000) s.over1s++;
    if (ms > 5000) s.over5s++;
    lat.push(ms);
    run.busyMs += ms;
  }

  /** The probe's summary once its units are done. */
  finish(run: Run): ProbeSummary {
    const { s, lat } = run;
    if (run.p.kind === 'lookups') s.queriesPerUnit = s.units > 0 ? s.sent / s.units : 0;
    s.byRound = [{ units: s.units, stalled: s.stalled }];
    if (lat.length > 0) {
      lat.sort((a, b) => a - b);
      s.medianMs = lat[Math.floor(lat.length / 2)]!;
      s.meanMs = lat.reduce((a, b) => a + b, 0) / lat.length;
    }
    return s;
  }

  /**
   * Seconds a probe took: its units' time over its slots (20 raw queries in flight, 8 lookups, one paced query every
   * 50 ms), as dnsbench keeps its slots full.
   */
  seconds(run: Run): number {
    const { p, s } = run;
    if (p.paced) return s.units / 20 + (s.stalled > 0 ? this.w.timeoutS : 0);
    return run.busyMs / 1000 / (p.kind === 'lookups' ? LOOKUPS : 20);
  }

  /** A count over `seconds` of a Poisson background (in bursts of about 5 when bursty). */
  background(perS: number | undefined, seconds: number, bursty: boolean): number {
    if (perS === undefined || perS === 0) return 0;
    const events = poisson(this.rng, bursty ? (perS * seconds) / 5 : perS * seconds);
    if (!bursty) return events;
    let n = 0;
    for (let i = 0; i < events; i++) n += 1 + poisson(this.rng, 4);
    return n;
  }
}

function poisson(rng: () => number, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 50) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * gauss(rng)));
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= rng();
  } while (p > l);
  return k - 1;
}

function gauss(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(rng() || 1e-12)) * Math.cos(2 * Math.PI * rng());
}

function merge(a: ProbeSummary, b: ProbeSummary): ProbeSummary {
  return {
    ...a, sent: a.sent + b.sent, answered: a.answered + b.answered, timeouts: a.timeouts + b.timeouts, late: a.late + b.late, units: a.units + b.units, stalled: a.stalled + b.stalled,
    over1s: a.over1s + b.over1s, over5s: a.over5s + b.over5s, servfailed: a.servfailed + b.servfailed,
    rcodes: Object.fromEntries([...new Set([...Object.keys(a.rcodes), ...Object.keys(b.rcodes)])].map((k) => [k, (a.rcodes[k] ?? 0) + (b.rcodes[k] ?? 0)])),
    queriesPerUnit: (a.queriesPerUnit * a.units + b.queriesPerUnit * b.units) / Math.max(1, a.units + b.units), rounds: a.rounds + b.rounds, byRound: [...a.byRound, ...b.byRound],
  };
}

export const BUDGET_S = 30;
const plans = new WeakMap<World, Probe[]>();

/** One run of doctor in world `w`: the rounds the rules ask for while the budget lasts; the final findings. */
export function runWorld(world: World, seed: number): Finding[] {
  const w = { search: 3, ndots: 5, nameservers: 1, endpoints: 2, libc: 'glibc' as const, timeoutS: 5, fixes: true, view: 'pod' as const, ...world };
  const sim = new Sim(w, seed);
  const plan = plans.get(world) ?? planOf(w);
  plans.set(world, plan);
  const byLabel = new Map<string, ProbeSummary>();
  let elapsed = 0;
  // The plan's phases and waves (src/doctor/plan.ts): the probes of a wave run at once, their units interleaved in
  // time; a wave has its share of what is left of its phase, and a probe starts no unit past it (dnsbench's duration).
  const round = (specs: Probe[], scale: number, waves: ReadonlyArray<readonly MoreProbes[]>, deadline: number): void => {
    const todo = waves.map((wave) => specs.filter((p) => wave.includes(p.group))).filter((x) => x.length > 0);
    todo.forEach((inWave, i) => {
      const cap = (deadline - elapsed) / (todo.length - i);
      if (cap <= 0) return;
      const runs = inWave.map((p) => sim.start(p));
      for (let left = true; left; ) {
        left = false;
        for (const r of runs) {
          if (r.s.units >= r.p.units * scale || sim.seconds(r) >= cap) continue;
          sim.step(r);
          left = true;
        }
      }
      elapsed += Math.max(...runs.map((r) => sim.seconds(r)));
      for (const r of runs) {
        if (r.s.units === 0) continue;
        const s = sim.finish(r);
        const had = byLabel.get(r.p.label);
        byLabel.set(r.p.label, had === undefined ? s : merge(had, s));
      }
    });
  };
  const probes = (): ProbeSummary[] => plan.map((p) => byLabel.get(p.label)).filter((p): p is ProbeSummary => p !== undefined);
  const seconds = (): number => Math.max(1, elapsed);
  const bursty = w.background?.bursty ?? false;
  const baselineS = 10;
  const input = (final: boolean): AttributionInput => {
    const nat = w.view === 'node' && !w.nodeLocal;
    const during = seconds();
    const counter = (name: string, perS: number | undefined, extra = 0): CounterEvidence => {
      const steps = Array.from({ length: baselineS }, () => sim.background(perS, 1, bursty));
      return { name, during: sim.background(perS, during, bursty) + extra, seconds: during, baseline: steps.reduce((a, b) => a + b, 0), baselineSeconds: baselineS, baselineSteps: steps };
    };
    const insert = counter('insert_failed', w.background?.insertFailed, nat ? sim.raceDrops : 0);
    const nic = counter('eth0 pps_allowance_exceeded', w.background?.nic, sim.nicDrops);
    const cd = (servfail: number, rejects: number, seconds: number) => ({ url: 'http://10.244.0.2:9153/metrics', version: null, requests: 100, forwarded: 50, forwardServfail: servfail, forwardMeanSeconds: 0.01, maxConcurrentRejects: rejects, panics: 0, responsesServfail: servfail, seconds });
    const coredns: CorednsEvidence[] | null = w.background?.corednsServfail !== undefined || w.background?.corednsRejects !== undefined
      ? [{ ...cd(sim.background(w.background.corednsServfail, during, bursty), sim.background(w.background.corednsRejects, during, bursty), during), baseline: { ...cd(sim.background(w.background.corednsServfail, baselineS, bursty), sim.background(w.background.corednsRejects, baselineS, bursty), baselineS) }, baselineSeconds: baselineS }]
      : null;
    return {
      probes: probes(),
      service: w.endpoints > 0 ? { id: 'kube-system/kube-dns:dns', clusterIP: '10.96.0.10', endpoints: Array.from({ length: w.endpoints }, (_, i) => `10.244.0.${i + 2}:53`) } : null,
      libc: w.libc,
      clashFixes: w.fixes ? ['4.19', '5.0', '5.6', '5.10'] : [],
      insertFailed: nat ? { during: insert.during, seconds: insert.seconds, baseline: insert.baseline ?? 0, baselineSeconds: baselineS, baselineSteps: insert.baselineSteps ?? [] } : null,
      conntrack: nat ? [insert] : null,
      nodeLocalDNS: w.nodeLocal ?? false,
      name: 'google.com',
      ndots: w.search > 0 && w.ndots > 1 ? { code: 'NDOTS_AMPLIFICATION', severity: 'warning', subject: { kind: 'name', name: 'google.com' }, message: '', evidence: { ndots: w.ndots, searchDomains: w.search, queriesPerExternalLookup: 2 * (w.search + 1) }, remedy: 'lower ndots' } as Finding : undefined,
      nic: w.view === 'node' && (nic.during > 0 || w.background?.nic !== undefined) ? [{ ...nic, iface: 'eth0', counter: 'pps_allowance_exceeded' }] : null,
      coredns,
      final,
    };
  };
  for (const phase of PHASES) {
    const deadline = BUDGET_S * phase.until;
    const groups = new Set(phase.waves.flat());
    round(plan, 1, phase.waves, deadline);
    for (let i = 0; i < EXTRA_ROUNDS && elapsed < deadline - 1; i++) {
      const more = new Set(attribute(input(false)).more.filter((g) => groups.has(g)));
      if (more.size === 0) break;
      round(plan.filter((p) => more.has(p.group)), GROWTH, phase.waves, deadline);
    }
  }
  return attribute(input(true)).findings;
}
