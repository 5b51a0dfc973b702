import type { Finding } from '../findings.js';
import type { Style } from './style.js';
import { severityLabel } from './style.js';

function evidenceText(e: Finding['evidence']): string {
  return Object.entries(e)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

export function renderFindings(style: Style, findings: readonly Finding[]): string {
  if (findings.length === 0) return `${style.c.green('No findings.')}\n`;
  const out: string[] = ['Findings:'];
  for (const f of findings) {
    out.push(`  ${severityLabel(style, f.severity)} ${style.c.bold(f.code)}: ${f.message}`);
    const ev = evidenceText(f.evidence);
    if (ev !== '') out.push(`      evidence: ${style.c.dim(ev)}`);
    if (f.remedy !== '') out.push(`      remedy:   ${f.remedy}`);
  }
  return `${out.join('\n')}\n`;
}

export function renderWarnings(style: Style, warnings: readonly string[]): string {
  if (warnings.length === 0) return '';
  return `${warnings.map((w) => `${style.c.yellow('warning:')} ${w}`).join('\n')}\n`;
}
