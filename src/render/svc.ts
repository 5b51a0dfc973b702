import type { SvcResult } from '../commands/svc.js';
import type { EndpointShare, ServiceReport } from '../kubeproxy/analyse.js';
import { renderFindings } from './findings.js';
import type { Style } from './style.js';
import { percent } from '../stats/index.js';

const BAR = 30;

function bars(style: Style, eps: EndpointShare[], indent: string, known = true): string[] {
  let width = 8;
  for (const e of eps) width = Math.max(width, e.address.length);
  // A split that depends on load has no bar: the weights are all the rules say.
  if (!known) return eps.map((e) => `${indent}${e.address.padEnd(width)} ${style.c.dim(`weight ${e.weight ?? '?'}`)}`);
  return eps.map((e) => {
    const n = Math.round(e.share * BAR);
    const bar = '#'.repeat(n) + '.'.repeat(Math.max(0, BAR - n));
    const p = e.probability !== null ? style.c.dim(`  p=${e.probability}`) : e.weight !== undefined ? style.c.dim(`  weight ${e.weight}`) : '';
    return `${indent}${e.address.padEnd(width)} ${bar} ${percent(e.share, 2).padStart(7)}${p}`;
  });
}

/** Entries shown on a Service's line; the rest counted (the JSON has them all). */
const SHOWN_ENTRIES = 8;

function entries(s: ServiceReport): string {
  const more = s.entries.length > SHOWN_ENTRIES ? `, and ${s.entries.length - SHOWN_ENTRIES} more` : '';
  return s.entries
    .slice(0, SHOWN_ENTRIES)
    .map((e) => {
      if (e.kind === 'nodePort') return `nodePort ${e.port}`;
      const a = e.address ?? '?';
      return `${e.kind} ${a.includes(':') ? `[${a}]` : a}${e.port !== null ? `:${e.port}` : ''}`;
    })
    .join(', ') + more;
}

export function renderSvc(style: Style, r: SvcResult, limit = 200): string {
  const { c } = style;
  const out: string[] = [];
  out.push(`${c.bold('read')}: ${r.sources.join(', ')} (${r.inputs.join(', ')}); kube-proxy mode: ${r.modes.join(', ') || 'none found'}; ${r.stats.services} service ports, ${r.stats.rules} rules`);
  for (const u of r.unavailable) out.push(c.dim(`  not read: ${u.source}: ${u.reason}`));
  out.push('');
  for (const s of r.services.slice(0, limit)) {
    out.push(`${c.bold(s.id)}${s.protocol ? ` ${s.protocol}` : ''}  ${c.dim(entries(s))}${s.sessionAffinitySeconds !== null ? c.dim('  (session affinity)') : ''}`);
    if (s.cluster) {
      const label = s.mode === 'ipvs' ? `scheduler ${s.cluster.shares?.basis ?? s.cluster.chain}` : `cluster path (${s.cluster.policy}) ${c.dim(s.cluster.chain)}`;
      out.push(`  ${label}`);
      if (s.endpoints.length === 0) out.push(c.yellow('    no endpoints'));
      out.push(...bars(style, s.endpoints, '    ', s.cluster.shares?.known ?? true));
      if (s.cluster.fallthrough > 1e-9 && s.endpoints.length > 0) out.push(c.red(`    ${percent(s.cluster.fallthrough, 2)} match no endpoint`));
      if (s.cluster.dropped > 1e-9) out.push(c.red(`    ${percent(s.cluster.dropped, 2)} dropped (missing chain, or no endpoint)`));
    }
    if (s.external && s.externalEndpoints) {
      out.push(`  external path (${s.external.policy}) ${c.dim(s.external.chain)}`);
      if (s.externalEndpoints.length === 0) out.push(c.yellow('    no endpoints on this node: external traffic falls through'));
      out.push(...bars(style, s.externalEndpoints, '    '));
    }
  }
  if (r.services.length > limit) out.push(c.dim(`... ${r.services.length - limit} more service ports (use --service or --json)`));
  out.push('');
  out.push(renderFindings(style, r.findings).trimEnd());
  return `${out.join('\n')}\n`;
}
