/** `k8sdiag drops` for people: what was watched, the places packets died, the first drops, the findings. */
import type { DropsResult } from '../commands/drops.js';
import { renderFindings } from './findings.js';
import { table } from './style.js';
import type { Style } from './style.js';
import { terminalSafe } from './terminal.js';

const SHOWN = 20;

export function renderDrops(style: Style, r: DropsResult): string {
  const { c } = style;
  const out: string[] = [];
  out.push(c.bold(`drops ${terminalSafe(r.source)}`) + `: DNS ports ${r.ports.join(', ')}, ${r.seconds} s; ${r.drops} DNS packets dropped` + (r.leftOut > 0 ? c.yellow(`, ${r.leftOut} more past the program's cap (counted, not read)`) : '') + (r.interrupted ? c.yellow('  [interrupted]') : ''));
  if (r.unparsed > 0) out.push(c.yellow(`${r.unparsed} lines of bpftrace's output were not its format (left out)`));
  if (r.byPlace.length > 0) {
    const t = table(style, ['reason', 'kernel function', 'endpoint', 'direction', 'proto', 'drops', 'netns'], { align: ['left', 'left', 'left', 'left', 'left', 'right', 'left'] });
    for (const p of r.byPlace.slice(0, SHOWN)) t.push([p.reason, terminalSafe(p.location), terminalSafe(p.endpoint), p.direction, p.transport, String(p.count), p.netns.join(' ')]);
    out.push(t.toString() + (r.byPlace.length > SHOWN ? `\n${c.dim(`  ... and ${r.byPlace.length - SHOWN} more`)}` : ''));
  }
  out.push(renderFindings(style, r.findings).trimEnd());
  return `${out.join('\n')}\n`;
}
