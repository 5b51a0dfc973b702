/** `k8sdiag drops` for people: what was watched, the places packets died, the first drops, the flows never replied, the findings. */
import type { DropsResult } from '../commands/drops.js';
import { renderFindings } from './findings.js';
import { table } from './style.js';
import type { Style } from './style.js';
import { terminalSafe } from './terminal.js';

const SHOWN = 20;

export function renderDrops(style: Style, r: DropsResult): string {
  const { c } = style;
  const out: string[] = [];
  const bpf = r.sources.bpf === null;
  out.push(
    c.bold(`drops ${terminalSafe(r.source)}`) +
      `: DNS ports ${r.ports.join(', ')}, ${r.seconds} s` +
      (bpf ? `; ${r.drops} DNS packets dropped` : '') +
      (r.leftOut > 0 ? c.yellow(`, ${r.leftOut} more past the program's cap (counted, not read)`) : '') +
      (r.interrupted ? c.yellow('  [interrupted]') : ''),
  );
  for (const [name, why] of [['the kernel\'s drops', r.sources.bpf], ['conntrack events', r.sources.conntrack]] as const) if (why !== null) out.push(c.dim(`${name}: not read (${terminalSafe(why)})`));
  if (r.counters !== null) out.push(c.dim(`conntrack's counters over the run: insert_failed +${r.counters.insertFailed}, drop +${r.counters.drop}, early_drop +${r.counters.earlyDrop}`));
  if (r.unparsed > 0) out.push(c.yellow(`${r.unparsed} lines of bpftrace's output were not its format (left out)`));
  if (r.byPlace.length > 0) {
    const withPods = r.byPlace.some((p) => p.pods.length > 0);
    const t = table(style, ['reason', 'kernel function', 'endpoint', 'direction', 'proto', 'drops', 'netns', ...(withPods ? ['pods'] : [])], { align: ['left', 'left', 'left', 'left', 'left', 'right', 'left', 'left'] });
    for (const p of r.byPlace.slice(0, SHOWN)) t.push([p.reason, terminalSafe(p.location), terminalSafe(p.endpoint), p.direction, p.transport, String(p.count), p.netns.join(' '), ...(withPods ? [terminalSafe(p.pods.join(' '))] : [])]);
    out.push(t.toString() + (r.byPlace.length > SHOWN ? `\n${c.dim(`  ... and ${r.byPlace.length - SHOWN} more`)}` : ''));
  }
  const ct = r.conntrack;
  if (ct !== null) {
    out.push(
      `conntrack: ${ct.flows} DNS flows, ${ct.replied} replied, ${ct.unreplied} never replied within ${ct.timeoutS} s` +
        (ct.waiting > 0 ? `, ${ct.waiting} still waiting at the end (younger than that)` : '') +
        (ct.before > 0 ? `; ${ct.before} begun before the run (not judged)` : '') +
        (ct.evicted > 0 ? c.yellow(`; ${ct.evicted} let go past the table's bound`) : '') +
        (ct.unparsed > 0 ? c.yellow(`; ${ct.unparsed} lines not conntrack's format`) : ''),
    );
    if (ct.byEndpoint.length > 0) {
      const t = table(style, ['endpoint', 'pod', 'sent to', 'flows', 'replied', 'unreplied'], { align: ['left', 'left', 'left', 'right', 'right', 'right'] });
      for (const e of ct.byEndpoint.slice(0, SHOWN)) t.push([terminalSafe(e.endpoint), terminalSafe(e.pod ?? '-'), terminalSafe(e.via.join(' ')), String(e.flows), String(e.replied), e.unreplied > 0 ? c.red(String(e.unreplied)) : '0']);
      out.push(t.toString() + (ct.byEndpoint.length > SHOWN ? `\n${c.dim(`  ... and ${ct.byEndpoint.length - SHOWN} more`)}` : ''));
    }
  }
  out.push(renderFindings(style, r.findings).trimEnd());
  return `${out.join('\n')}\n`;
}
