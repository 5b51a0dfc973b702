import type { ConntrackResult } from '../commands/conntrack.js';
import { renderFindings } from './findings.js';
import type { Style } from './style.js';
import { num, table } from './style.js';
import { percent } from '../stats/index.js';

/** The counters that matter most, first; the rest follow in input order. */
const FIRST = ['insert_failed', 'drop', 'early_drop', 'clash_resolve', 'invalid', 'insert', 'found', 'error', 'search_restart', 'chaintoolong'];

export function renderConntrack(style: Style, r: ConntrackResult): string {
  const { c } = style;
  const out: string[] = [];
  out.push(`${c.bold('read')}: ${r.sources.join(', ')}${r.netns ? c.dim(`  (${r.netns})`) : ''}`);
  for (const u of r.unavailable) out.push(c.dim(`  not read: ${u.reason}`));
  for (const e of r.toolErrors) out.push(c.yellow(`  conntrack-tools said: ${e}`));
  if (r.generation) out.push(`kernel counters: ${r.generation}, ${r.cpus} CPU${r.cpus === 1 ? '' : 's'} (${r.countersSource})`);
  out.push('');
  const keys = Object.keys(r.counters);
  if (keys.length > 0) {
    const ordered = [...FIRST.filter((k) => keys.includes(k)), ...keys.filter((k) => !FIRST.includes(k))];
    const head = ['counter', 'total'];
    if (r.watch) head.push(r.watch.seconds !== null ? `delta (${r.watch.seconds.toFixed(1)} s${r.interrupted ? ', interrupted' : ''})` : 'delta (2 snapshots)', 'per second');
    const t = table(style, head, { align: ['left', 'right', 'right', 'right'] });
    for (const k of ordered) {
      const v = r.counters[k] ?? 0;
      const bad = (k === 'insert_failed' || k === 'drop' || k === 'early_drop') && v > 0;
      const row = [k, bad ? c.red(num(v)) : num(v)];
      if (r.watch) {
        const d = r.watch.deltas[k];
        row.push(d ? num(d.delta) + (d.reset ? c.yellow(' (reset)') : '') : '-', d ? (d.perSecond === null ? 'n/a' : d.perSecond.toFixed(2)) : '-');
      }
      t.push(row);
    }
    out.push(t.toString());
  }
  const tb = r.table;
  const parts: string[] = [];
  if (tb.count !== undefined || tb.max !== undefined) {
    parts.push(`table ${tb.count !== undefined ? num(tb.count) : '?'} / ${tb.max !== undefined ? num(tb.max) : '?'} entries` +
      (tb.usage !== undefined ? ` (${percent(tb.usage)})` : ''));
  }
  if (tb.buckets !== undefined) parts.push(`buckets ${num(tb.buckets)}`);
  if (tb.udpTimeout !== undefined) parts.push(`UDP timeout ${tb.udpTimeout} s${tb.udpTimeoutStream !== undefined ? ` (stream ${tb.udpTimeoutStream} s)` : ''}`);
  if (parts.length) out.push(parts.join(', '));
  if (r.kernelLog.tableFullLines) out.push(c.red(`kernel log: ${r.kernelLog.tableFullLines} "table full" line(s)`));
  out.push('');
  out.push(renderFindings(style, r.findings).trimEnd());
  return `${out.join('\n')}\n`;
}
