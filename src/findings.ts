/** The shape every analysing command reports its findings in. */

export type Severity = 'info' | 'warning' | 'critical';

export interface Finding {
  /** Stable machine-readable code, e.g. INSERT_FAILED. */
  code: string;
  severity: Severity;
  /** One sentence for a human. */
  message: string;
  /** The numbers or lines the finding rests on. */
  evidence: Record<string, string | number | boolean | null>;
  /** What to do about it; empty for pure information. */
  remedy: string;
}

const ORDER: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

export function sortFindings(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) => ORDER[a.severity] - ORDER[b.severity]);
}

/** grep-style exit code: 1 when any finding is a warning or critical, else 0. */
export function exitCodeFor(findings: readonly Finding[]): 0 | 1 {
  return findings.some((f) => f.severity !== 'info') ? 1 : 0;
}
