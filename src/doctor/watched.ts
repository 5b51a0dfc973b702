/**
 * doctor's view of the real pods' DNS: a `watch` capture beside the probes, and whether the pods' own queries show the
 * cause the probes name.
 *
 * Two ways to watch, so that doctor's own queries never count as the pods':
 * - `during`: tcpdump runs while the probes do, and every client address of this network namespace (the probes'
 *   sources) is left out. On a node, pods have addresses of their own: what is left is theirs. Costs no time.
 * - `before`: tcpdump runs for S seconds before the first probe is sent, and nothing is left out. Inside a pod's
 *   namespace (a debug container) the application shares doctor's address, so this is the way there.
 */
import { networkInterfaces } from 'node:os';
import { execa } from 'execa';
import type { Finding, FindingCode } from '../findings.js';
import { UserError } from '../errors.js';
import { runWatch } from '../commands/watch.js';
import type { WatchResult } from '../commands/watch.js';
import { percentOf } from '../stats/index.js';
import { ALPHA } from './evidence.js';

export interface WatchedEndpoint {
  queries: number;
  unanswered: number;
  answeredAfterResend: number;
  raceSignature: number;
}

/** What the real pods' queries came to while doctor watched. */
export interface Watched {
  mode: 'before' | 'during';
  seconds: number;
  /** Client addresses left out: this namespace's own (mode `during`). */
  excluded: string[];
  queries: number;
  answered: number;
  unanswered: number;
  answeredAfterResend: number;
  raceSignature: number;
  raceSignatureDnated: number;
  pairs: number;
  clients: number;
  /** What tcpdump said it lost (null: not known). */
  kernelDrops: number | null;
  byEndpoint: Record<string, WatchedEndpoint>;
  /** watch's own findings on this traffic (its catalogue: QUERY_STALLS, RACE_SIGNATURE, WATCHED_ENDPOINT_LOSS, ...). */
  findings: Finding[];
}

/** This network namespace's own addresses: doctor's probes leave from them. */
export function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.replace(/%.*$/, ''));
  return out;
}

/** Whether tcpdump can be run here at all (installed); permission shows only when it starts. */
export async function tcpdumpInstalled(): Promise<boolean> {
  const r = await execa('tcpdump', ['--version'], { reject: false, timeout: 5000 });
  return r.exitCode === 0;
}

export interface WatchHandle {
  /** Stop the capture (mode during: when the probes are done) and read what it saw; an error line when it failed. */
  finish: () => Promise<Watched | { error: string }>;
}

/**
 * Start a live watch and resolve once tcpdump listens (so the probes, or the wait, start with the capture running), or
 * with why it could not start. `seconds`: the capture ends by itself then (mode before); otherwise at `finish()`.
 */
export async function startWatch(o: { mode: 'before' | 'during'; seconds?: number; signal?: AbortSignal }): Promise<WatchHandle | { error: string }> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const excluded = o.mode === 'during' ? ownAddresses() : new Set<string>();
  const t0 = performance.now();
  let listening: () => void = () => undefined;
  const heard = new Promise<void>((resolve) => (listening = resolve));
  const run = runWatch({
    ...(o.seconds !== undefined ? { durationS: o.seconds } : {}),
    signal: stop.signal,
    excludeClients: excluded,
    onListening: () => listening(),
  }).then(
    (r) => ({ r }),
    (err: unknown) => ({ error: err instanceof UserError ? err.message : String(err) }),
  );
  // tcpdump says it listens within a moment; if it fails first, that is the answer.
  const first = await Promise.race([heard.then(() => 'listening' as const), run, new Promise<'slow'>((r) => setTimeout(() => r('slow'), 10_000).unref())]);
  if (first !== 'listening') {
    stop.abort();
    o.signal?.removeEventListener('abort', onAbort);
    const r = first === 'slow' ? { error: 'tcpdump did not start listening within 10 s' } : await run;
    return { error: 'error' in r ? r.error : 'tcpdump ended before it listened' };
  }
  return {
    finish: async () => {
      if (o.seconds === undefined) stop.abort();
      const r = await run;
      o.signal?.removeEventListener('abort', onAbort);
      if ('error' in r) return { error: r.error };
      return summarize(r.r, o.mode, (performance.now() - t0) / 1000, [...excluded].sort());
    },
  };
}

type Step = { step: 'watch'; ok: boolean; note: string };

/**
 * doctor's watch, at one of its two moments. `before` (ahead of the conntrack baseline): `--watch S` watches S seconds,
 * done when this returns. `during` (just before the probes): unset `--watch`, on a node where tcpdump is installed, a
 * watch starts that runs while they do (`watching`: finishWatch it on every path, or tcpdump outlives doctor). `--watch
 * 0`: none.
 */
export async function beginWatch(at: 'before' | 'during', watchS: number | undefined, view: string, signal: AbortSignal | undefined, say: (m: string) => void): Promise<{ watched: Watched | null; watching?: WatchHandle; steps: Step[] }> {
  const before = watchS !== undefined && watchS > 0;
  if (at === 'before' ? !before : before || watchS !== undefined || view !== 'node' || !(await tcpdumpInstalled())) return { watched: null, steps: [] };
  const sig = signal !== undefined ? { signal } : {};
  const h = await startWatch(before ? { mode: 'before', seconds: watchS, ...sig } : { mode: 'during', ...sig });
  if ('error' in h) return { watched: null, steps: [{ step: 'watch', ok: false, note: `the pods' DNS not watched: ${h.error}` }] };
  say(before ? `doctor: watching the pods' DNS for ${watchS} s before the probes` : "doctor: watching the pods' DNS during the probes (this namespace's own addresses left out)");
  if (!before) return { watched: null, watching: h, steps: [] };
  const f = await finishWatch(h);
  return { watched: f.watched, steps: [f.step] };
}

/** The watch's result, and doctor's step for it: what it saw, or why it saw nothing. */
export async function finishWatch(h: WatchHandle): Promise<{ watched: Watched | null; step: Step }> {
  const w = await h.finish();
  if ('error' in w) return { watched: null, step: { step: 'watch', ok: false, note: `the pods' DNS not watched: ${w.error}` } };
  const how = w.mode === 'before' ? 'before the probes' : `during the probes, ${w.excluded.length} own addresses left out`;
  return { watched: w, step: { step: 'watch', ok: true, note: `${w.queries} queries of ${w.clients} clients seen in ${w.seconds} s (${how})` } };
}

function summarize(w: WatchResult, mode: Watched['mode'], seconds: number, excluded: string[]): Watched {
  const byEndpoint: Record<string, WatchedEndpoint> = {};
  for (const [e, g] of Object.entries(w.byEndpoint)) byEndpoint[e] = { queries: g.queries, unanswered: g.unanswered, answeredAfterResend: g.answeredAfterResend, raceSignature: g.raceSignature };
  return {
    mode,
    seconds: Number(seconds.toFixed(1)),
    excluded,
    queries: w.queries,
    answered: w.answered,
    unanswered: w.unanswered,
    answeredAfterResend: w.answeredAfterResend,
    raceSignature: w.raceSignature,
    raceSignatureDnated: w.raceSignatureDnated,
    pairs: w.pairs,
    clients: w.clients.seen,
    kernelDrops: w.capture.kernelDrops,
    byEndpoint,
    findings: w.findings,
  };
}

/** At least this many of the pods' queries waiting the timeout make "the real traffic stalls" a statement. */
const MIN_STALLS = 3;

/** doctor's causes that name where queries die, and the watch findings that show the same in the pods' traffic. */
const SAME: Partial<Record<FindingCode, FindingCode[]>> = {
  CONNTRACK_RACE: ['RACE_SIGNATURE'],
  PARALLEL_QUERY_LOSS: ['RACE_SIGNATURE'],
  ENDPOINT_LOSS: ['WATCHED_ENDPOINT_LOSS'],
  SERVER_FAILURES: ['WATCHED_SERVER_FAILURES'],
  UPSTREAM_FAILURE: ['WATCHED_SERVER_FAILURES'],
  TCP_FALLBACK_BLOCKED: ['TCP_FALLBACK_FAILING'],
};

/** A watch finding passed its own test: RACE_SIGNATURE is said (a warning) below it, the others only past it. */
function passesGate(f: Finding, cause: FindingCode): boolean {
  if (f.code !== 'RACE_SIGNATURE') return true;
  if (cause === 'CONNTRACK_RACE') return f.severity === 'critical';
  const p = f.evidence['p'];
  return typeof p === 'number' && p < ALPHA;
}

/**
 * One line for the verdict: whether the real pods' queries show the cause the probes name. `causes`: doctor's findings
 * that name a cause, in the verdict's order.
 */
export function realTrafficLine(causes: readonly Finding[], w: Watched): string {
  const how = w.mode === 'before' ? `in the ${w.seconds} s before the probes` : `during the probes (${w.seconds} s, this namespace's own addresses left out)`;
  if (w.queries === 0) return `Real traffic: no pod's DNS query was seen ${how}: nothing to compare.`;
  const stalled = w.unanswered + w.answeredAfterResend;
  const said = `${stalled} of ${w.queries} queries from ${w.clients} client${w.clients === 1 ? '' : 's'} waited the timeout (${percentOf(stalled, w.queries, 2)})`;
  const lost = w.kernelDrops !== null && w.kernelDrops > 0 ? `; tcpdump lost ${w.kernelDrops} packets, so some may have been answered` : '';
  const seen = (f: Finding): boolean => f.severity !== 'info';
  const watchedCodes = w.findings.filter(seen).map((f) => f.code);
  const cause = causes[0];
  if (cause === undefined) {
    if (stalled < MIN_STALLS) return `Real traffic agrees: ${said} ${how}${lost}.`;
    return `Real traffic stalls though the probes found no cause: ${said} ${how} (${watchedCodes.join(', ') || 'no finding of its own'})${lost}: the pods' path is not the probes' (see watched.byEndpoint).`;
  }
  // Agreement needs the watch finding to pass its own gate: the race's signature beyond chance (and, for the race,
  // DNATed), never a pattern that chance explains.
  const shown = (SAME[cause.code] ?? []).filter((c) => watchedCodes.includes(c));
  const same = shown.filter((c) => w.findings.some((f) => f.code === c && seen(f) && passesGate(f, cause.code)));
  const subject = cause.subject.kind === 'endpoint' ? cause.subject.address : null;
  const e = subject !== null ? w.byEndpoint[subject] : undefined;
  const detail = e !== undefined ? `; ${subject}: ${e.unanswered + e.answeredAfterResend} of ${e.queries} of the pods' queries waited` : cause.code === 'CONNTRACK_RACE' || cause.code === 'PARALLEL_QUERY_LOSS' ? `; ${w.raceSignature} of ${w.pairs} A/AAAA pairs lost one` : '';
  if (same.length > 0) return `Real traffic shows the same cause (${same.join(', ')}): ${said} ${how}${detail}${lost}.`;
  if (shown.length > 0) return `Real traffic shows ${shown.join(', ')} short of its own test (see its finding), so it neither confirms nor rules out ${cause.code}: ${said} ${how}${detail}${lost}.`;
  if (stalled === 0) return `Real traffic does not show it: none of the ${w.queries} pods' queries seen ${how} waited the timeout${lost}.`;
  return `Real traffic stalls, without ${cause.code}'s signature: ${said} ${how} (${watchedCodes.join(', ') || 'below the findings\' minimum'})${lost}.`;
}
