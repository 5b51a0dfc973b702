/** watch for a human: what was captured, the queries' fate, per endpoint and per client, then the findings. */
import { hostOfKey } from '../capture/match.js';
import type { StallEvent } from '../capture/match.js';
import type { GroupStats } from '../capture/match.js';
import { queriesPerName } from '../capture/groups.js';
import type { WatchResult } from '../commands/watch.js';
import { percentOf } from '../stats/index.js';
import { renderFindings } from './findings.js';
import { num, table } from './style.js';
import type { Style } from './style.js';
import { terminalSafe } from './terminal.js';
import { CLIENT_HISTOGRAMS } from '../capture/client-table.js';

const SHOWN = 20;

export function stallLine(e: StallEvent): string {
  const t = new Date(e.tsUs / 1000).toISOString();
  const who = e.pod !== null ? `${e.pod} (${e.client})` : e.client;
  const via = e.endpoint !== null ? `${e.server} -> ${e.endpoint}` : e.server;
  const what = e.outcome === 'unanswered' ? `UNANSWERED after ${(e.waitedMs / 1000).toFixed(1)} s` : e.outcome === 'answered-after-resend' ? `answered after a resend, ${e.waitedMs.toFixed(1)} ms` : `slow, ${e.waitedMs.toFixed(1)} ms`;
  return terminalSafe(`${t} STALL ${who} ${e.name} ${e.type} via ${via}: ${what}`);
}

const ms = (v: number | null | undefined): string => (v === undefined || v === null ? 'n/a' : v.toFixed(1));

function groupTable(style: Style, title: string, rows: Array<[string, GroupStats]>, pods: Record<string, string>): string {
  const { c } = style;
  const t = table(style, [title, 'pod', 'queries', 'answered', 'after resend', 'unanswered', 'late', 'race', 'p50 ms', 'p99 ms', 'max ms'], { align: ['left', 'left', ...Array<'right'>(9).fill('right')] });
  for (const [k, g] of rows.slice(0, SHOWN)) {
    const ip = hostOfKey(k);
    t.push([terminalSafe(k), terminalSafe(pods[ip] ?? pods[k] ?? '-'), num(g.queries), num(g.answered), g.answeredAfterResend ? c.yellow(num(g.answeredAfterResend)) : '0', g.unanswered ? c.red(num(g.unanswered)) : '0', num(g.late),
      g.raceSignature ? c.red(num(g.raceSignature)) : '0', ms(g.latencyMs?.p50), ms(g.latencyMs?.p99), ms(g.latencyMs?.max)]);
  }
  return t.toString() + (rows.length > SHOWN ? `\n${c.dim(`  ... and ${rows.length - SHOWN} more`)}` : '');
}

export function renderWatch(style: Style, r: WatchResult): string {
  const { c } = style;
  const out: string[] = [];
  const cap = r.capture;
  const lost = cap.kernelDrops === null ? '' : `, ${num(cap.kernelDrops)} dropped by the kernel${cap.ifDrops !== null ? `, ${num(cap.ifDrops)} by the interface` : ''}`;
  out.push(c.bold(`watch ${terminalSafe(cap.source)}`) + ` (${cap.format}${cap.compression ? `, ${cap.compression}` : ''}): ${num(cap.packets)} packets over ${cap.spanS.toFixed(1)} s${lost}; ${num(r.messages)} DNS messages` + (r.interrupted ? c.yellow('  [interrupted]') : ''));
  if (cap.damaged !== null) out.push(c.yellow(`capture: ${terminalSafe(cap.damaged)}`));
  if (cap.cut > 0) out.push(c.yellow(`capture: ${num(cap.cut)} packets cut short by the snap length (capture with -s 0 to keep them whole)`));
  out.push(
    `queries ${num(r.queries)}: answered ${num(r.answered)}, unanswered within ${r.timeoutS} s ${r.unanswered ? c.red(num(r.unanswered)) : '0'} (${percentOf(r.unanswered, r.queries, 2)}), ` +
      `answered only after a resend ${r.answeredAfterResend ? c.red(num(r.answeredAfterResend)) : '0'}, resends ${num(r.resends)}, answered late ${num(r.late)}, still waiting at the end ${num(r.inFlightAtEnd)}`,
  );
  out.push(`A/AAAA sent together: ${num(r.pairs)} lookups, ${r.raceSignature ? c.red(num(r.raceSignature)) : '0'} with one answered and the other not; queries sent alone: ${num(r.loneFirstLost)} of ${num(r.lone)} unanswered at their first send`);
  const l = r.total.latencyMs;
  out.push(`latency of answered queries, ms: p50 ${ms(l?.p50)}, p90 ${ms(l?.p90)}, p99 ${ms(l?.p99)}, max ${ms(l?.max)}; rcodes: ${Object.entries(r.total.rcodes).map(([k, v]) => `${k} ${num(v)}`).join(', ') || '(none)'}`);
  const t = r.total;
  if (r.truncated > 0 || t.tcp > 0) {
    out.push(`truncated answers ${num(r.truncated)}: followed by a TCP query ${num(r.tcpAfterTruncated)}, by a TCP connection that carried none ${t.truncatedTcpFailed ? c.red(num(t.truncatedTcpFailed)) : '0'}, by nothing ${t.truncatedNoTcp ? c.yellow(num(t.truncatedNoTcp)) : '0'}; queries over TCP ${num(t.tcp)}, unanswered ${t.tcpUnanswered ? c.red(num(t.tcpUnanswered)) : '0'}`);
  }
  if (t.searchQueries > 0) {
    out.push(`search-list names answered NXDOMAIN before the name itself: ${num(t.searchQueries)} of ${num(t.queries)} queries (${percentOf(t.searchQueries, t.queries, 1)}), ${queriesPerName(t.queries, t.searchQueries).toFixed(1)} queries per name asked`);
  }
  const other = [
    ...(r.unmatchedAnswers > 0 ? [`${num(r.unmatchedAnswers)} answers to queries sent before the capture`] : []),
    ...(r.malformed > 0 ? [`${num(r.malformed)} malformed messages`] : []),
    ...(r.evicted > 0 ? [`${num(r.evicted)} queries dropped from a full table`] : []),
    ...Object.entries(cap.skipped).map(([k, v]) => `${num(v)} frames ${k}`),
  ];
  if (other.length > 0) out.push(c.dim(`not counted: ${other.join(', ')}`));
  const endpoints = Object.entries(r.byEndpoint);
  if (endpoints.length > 0) out.push(groupTable(style, 'endpoint', endpoints, r.pods));
  const clients = Object.entries(r.byClient).sort((a, b) => b[1].unanswered + b[1].answeredAfterResend - (a[1].unanswered + a[1].answeredAfterResend) || b[1].queries - a[1].queries);
  if (clients.length > 0) out.push(groupTable(style, 'client', clients, r.pods));
  if (r.clients.seen > r.clients.shown || r.clients.withPercentiles < r.clients.shown) {
    out.push(c.dim(`clients: ${num(r.clients.seen)} seen, the ${num(r.clients.shown)} most troubled in the result (the rest in the totals); latency percentiles for ${num(r.clients.withPercentiles)} of them (of the first ${CLIENT_HISTOGRAMS} seen), min, mean and max for the rest`));
  }
  const k = r.kernel;
  if (k !== null && k !== undefined) {
    const ran = [k.sources.bpf === null ? "the kernel's drops" : '', k.sources.conntrack === null ? "conntrack's events" : ''].filter(Boolean).join(' and ');
    out.push(
      `kernel evidence (${ran}): ${num(k.joined)} stalled queries` +
        (k.stalls > k.joined ? ` (of ${num(k.stalls)})` : '') +
        `: ${num(k.dropped)} dropped on this node, ${num(k.beyond)} lost beyond it, ${num(k.unknown)} without evidence; ${num(k.drops)} DNS packets dropped by the kernel in all`,
    );
    for (const [name, why] of [["the kernel's drops", k.sources.bpf], ["conntrack's events", k.sources.conntrack]] as const) if (why !== null) out.push(c.dim(`  ${name}: not read (${terminalSafe(why)})`));
    for (const p of k.byPlace.slice(0, 10)) out.push(`  ${p.count} at ${terminalSafe(p.location)} (${p.reason}), ${p.direction === 'query' ? 'queries to' : 'answers to'} ${terminalSafe(p.endpoint)}, netns ${p.netns.join(' ')}`);
    for (const e of k.examples.slice(0, 5)) out.push(c.dim(`  ${e.time} ${terminalSafe(e.client)}:${e.clientPort} ${terminalSafe(e.name)} ${e.type}: ${terminalSafe(e.evidence)}`));
  }
  out.push(renderFindings(style, r.findings).trimEnd());
  return `${out.join('\n')}\n`;
}
