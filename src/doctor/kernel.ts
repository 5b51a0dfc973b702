/**
 * doctor --kernel: drops' two sources (the kernel's drops through bpftrace, conntrack's events) run while the probes
 * do, and a verdict line saying whether what the kernel saw corroborates or contradicts the cause the probes name: a
 * loss with a drop at netfilter that moved conntrack's insert_failed is the race, seen; a drop by a rule's verdict is a
 * firewall rule, not the race; a loss with no drop on this node is beyond it.
 */
import { UserError } from '../errors.js';
import type { Finding } from '../findings.js';
import { listenDrops } from '../commands/drops.js';
import type { DropPlace, DropsResult } from '../commands/drops.js';
import { CLOSE_REASONS } from '../kernel/drops.js';

/** What the kernel saw during the probes. */
export interface KernelSeen {
  sources: DropsResult['sources'];
  seconds: number;
  /** DNS packets the kernel dropped (null where its drops were not traced). */
  drops: number | null;
  byPlace: DropPlace[];
  counters: DropsResult['counters'];
  /** conntrack's DNS flows (null where its events were not read). */
  flows: { flows: number; replied: number; unreplied: number; byEndpoint: Array<{ endpoint: string; flows: number; unreplied: number }> } | null;
}

export interface KernelHandle {
  finish: () => Promise<KernelSeen | { error: string }>;
}

/** Start the sources and resolve once they listen, or with why neither can run. */
export async function startKernel(signal: AbortSignal | undefined): Promise<KernelHandle | { error: string }> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const said = (err: unknown): { error: string } => ({ error: err instanceof UserError ? err.message : String(err) });
  let run: { done: Promise<DropsResult> };
  try {
    run = await listenDrops({ signal: stop.signal });
  } catch (err) {
    signal?.removeEventListener('abort', onAbort);
    return said(err);
  }
  return {
    finish: async () => {
      stop.abort();
      let d: DropsResult;
      try {
        d = await run.done;
      } catch (err) {
        return said(err);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      return {
        sources: d.sources,
        seconds: d.seconds,
        drops: d.sources.bpf === null ? d.drops : null,
        byPlace: d.byPlace,
        counters: d.counters,
        flows: d.conntrack === null ? null : { flows: d.conntrack.flows, replied: d.conntrack.replied, unreplied: d.conntrack.unreplied, byEndpoint: d.conntrack.byEndpoint.map((e) => ({ endpoint: e.endpoint, flows: e.flows, unreplied: e.unreplied })) },
      };
    },
  };
}

const MIN = 3;
const RULE = new Set(['nft_do_chain', 'ipt_do_table']);
const RACE = new Set(['CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS']);

const places = (list: DropPlace[]): string =>
  list.slice(0, 3).map((p) => `${p.count} at ${p.location} (${p.reason}) ${p.direction === 'query' ? 'toward' : 'from'} ${p.endpoint}`).join(', ');

/** One line for the verdict: whether the kernel's evidence during the probes corroborates or contradicts the cause. */
export function kernelLine(causes: readonly Finding[], seen: KernelSeen, targets?: ReadonlySet<string>): string {
  // A socket closed with an answer unread lost nothing on the way: not where a query died. And only the drops toward
  // (or from) the servers the probes asked speak of the probes.
  const k = { ...seen, byPlace: seen.byPlace.filter((p) => !CLOSE_REASONS.has(p.reason) && (targets === undefined || targets.has(p.endpoint))) };
  const traced = k.drops !== null;
  const total = k.byPlace.reduce((n, p) => n + p.count, 0);
  const rule = k.byPlace.filter((p) => p.reason === 'NETFILTER_DROP' && RULE.has(p.location));
  const ruleN = rule.reduce((n, p) => n + p.count, 0);
  const confirm = k.byPlace.filter((p) => p.reason === 'NETFILTER_DROP' && !RULE.has(p.location));
  const confirmN = confirm.reduce((n, p) => n + p.count, 0);
  const moved = k.counters !== null && k.counters.insertFailed > 0;
  const unreplied = k.flows !== null && k.flows.unreplied > 0 ? `; conntrack saw ${k.flows.unreplied} of ${k.flows.flows} DNS flows never replied (${k.flows.byEndpoint.filter((e) => e.unreplied > 0).slice(0, 3).map((e) => `${e.endpoint}: ${e.unreplied}`).join(', ')})` : '';
  const ifd = k.counters !== null ? `, insert_failed +${k.counters.insertFailed}` : '';
  if (!traced) {
    if (k.flows === null) return 'Kernel evidence: none could be read.';
    return `Kernel evidence (conntrack's events only; the kernel's drops not traced: ${k.sources.bpf}): ${k.flows.unreplied} of ${k.flows.flows} DNS flows never replied${unreplied !== '' ? ` (${k.flows.byEndpoint.filter((e) => e.unreplied > 0).slice(0, 3).map((e) => `${e.endpoint}: ${e.unreplied}`).join(', ')})` : ''}.`;
  }
  const cause = causes[0];
  if (cause !== undefined && RACE.has(cause.code)) {
    if (confirmN >= MIN && moved) return `Kernel evidence shows the race: ${places(confirm)}${ifd}: conntrack's confirm step refused the entries.`;
    if (ruleN >= MIN && !moved) {
      const found = [...new Set(rule.flatMap((p) => (p.rules ?? []).map((r) => `${r.table} ${r.chain}: ${r.rule}`)))];
      const which = found.length > 0 ? `the rule, by what it names: ${found.slice(0, 2).join('; ')}` : 'find the rule (iptables-save, nft list ruleset)';
      return `Kernel evidence contradicts the race: the lost packets were dropped by a firewall rule's verdict (${places(rule)}) and insert_failed did not move: ${which}, not conntrack's insert.`;
    }
    if (total < MIN) return `Kernel evidence contradicts the race: no DNS packet was dropped on this node during the probes (${total})${ifd}: the loss is beyond this node${unreplied}.`;
    return `Kernel evidence: ${total} DNS packets dropped on this node during the probes (${places(k.byPlace)})${ifd}: neither the confirm step nor a rule alone.`;
  }
  if (cause !== undefined) {
    if (total >= MIN) return `Kernel evidence: the lost queries died on this node, not beyond it: ${places(k.byPlace)}${ifd}.`;
    return `Kernel evidence agrees: no DNS packet was dropped on this node during the probes: lost beyond it${unreplied}.`;
  }
  if (total >= MIN) return `Kernel evidence: ${total} DNS packets dropped on this node during the probes though the probes found no cause: ${places(k.byPlace)}.`;
  return `Kernel evidence agrees: no DNS packet was dropped on this node during the probes${unreplied}.`;
}
