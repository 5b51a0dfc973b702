import type { ResolvResult } from '../commands/resolv.js';
import { renderFindings } from './findings.js';
import type { Style } from './style.js';
import { table } from './style.js';

const REASON: Record<string, string> = {
  absolute: 'absolute (trailing dot): only this name',
  'as-is-first': 'as written, first (dots >= ndots)',
  search: 'search domain',
  'as-is-last': 'as written, after the search list',
};

export function renderResolv(style: Style, r: ResolvResult): string {
  const { c } = style;
  const out: string[] = [];
  out.push(`${c.bold(r.file)} read as ${r.libc}`);
  out.push(`  nameservers: ${r.nameservers.join(', ')}${r.ignoredNameservers.length ? c.yellow(`  (ignored: ${r.ignoredNameservers.join(', ')})`) : ''}`);
  out.push(`  search (${r.searchSource}): ${r.search.length ? r.search.join(' ') : '(none)'}`);
  out.push(`  options: ndots:${r.options.ndots} timeout:${r.options.timeout} attempts:${r.options.attempts}` +
    (r.optionsSet.filter((o) => !o.includes(':')).length ? ` ${r.optionsSet.filter((o) => !o.includes(':')).join(' ')}` : ''));
  if (r.optionsIgnored.length) out.push(`  ignored options: ${r.optionsIgnored.join('; ')}`);
  out.push('');
  if (r.name !== null && r.expansion) {
    const t = table(style, ['#', 'name tried', 'queries', 'why'], { align: ['right', 'left', 'left', 'left'] });
    r.candidates.forEach((cand, i) => {
      const why = (REASON[cand.reason] ?? cand.reason) + (cand.domain !== undefined ? ` ${cand.domain}` : '') + (cand.note ? ` (${cand.note})` : '');
      const answer = i === r.expansion?.answerIndex;
      t.push([String(i + 1), answer ? c.green(cand.fqdn) : cand.fqdn, cand.sent ? cand.types.join('+') : c.dim('not sent'), why]);
    });
    out.push(t.toString());
    const e = r.expansion;
    const names = r.candidates.filter((x) => x.sent).length;
    if (e.answerIndex >= 0 && e.answerIs === 'service') {
      out.push(`${r.name} -> a Service name: answered at name ${e.answerIndex + 1} of ${names}, after ${e.queriesToAnswer} queries, ${e.expectedNxdomain} of them NXDOMAIN` +
        c.dim(` (sent ${e.sendMode.replace(/-/g, ' ')})`));
    } else if (e.answerIndex >= 0) {
      out.push(`${r.name} -> ${names} name${names === 1 ? '' : 's'}, ${r.queries.length} queries${e.expectedNxdomain > 0 ? `, ${e.expectedNxdomain} of them expected NXDOMAIN before an answer` : ''}` +
        c.dim(` (if ${r.name.replace(/\.$/, '')} exists only as written; sent ${e.sendMode.replace(/-/g, ' ')})`));
    } else {
      out.push(`${r.name} -> ${names} names, ${r.queries.length} queries; never tried as written`);
    }
    if (e.expectedNxdomain > 0) {
      out.push(`  fixes: query "${r.name.replace(/\.$/, '')}." (trailing dot), lower ndots via the pod's dnsConfig, or use FQDN service names`);
    }
    out.push('');
  }
  out.push(renderFindings(style, r.findings).trimEnd());
  return `${out.join('\n')}\n`;
}
