/** The findings catalogue: one entry per code, severities enforced, subjects typed. */
import { describe, expect, it } from 'vitest';
import { CATALOGUE, finding, serviceOf, sortFindings } from '../src/findings.js';
import { analyseDumps } from '../src/kubeproxy/analyse.js';
import { parseDumps } from '../src/kubeproxy/rules.js';
import { readFixture } from './helpers/run.js';

describe('findings catalogue', () => {
  it('every entry names its command, a non-empty severity set and a rule', () => {
    for (const [code, e] of Object.entries(CATALOGUE)) {
      expect(['dnsbench', 'resolv', 'conntrack', 'svc', 'doctor'], code).toContain(e.command);
      expect(e.severities.length, code).toBeGreaterThan(0);
      expect(e.rule.length, code).toBeGreaterThan(5);
    }
  });

  it('a severity the code may not take is refused', () => {
    expect(() => finding('SERVFAIL', 'critical', { kind: 'machine' }, 'x', { SERVFAIL: 1 })).toThrow(/cannot be critical/);
    const ok = finding('TABLE_PRESSURE', 'critical', { kind: 'conntrack-table' }, 'x', { count: 96, max: 100, usage: 0.96 });
    expect(() => sortFindings([ok, { ...ok, severity: 'info' as const }])).toThrow(/cannot be info/);
  });

  it('svc findings about chains carry the chain and its Service as subject', () => {
    const a = analyseDumps(parseDumps(readFixture('svc/broken-unreachable-missing-orphan-duplicate.txt')));
    const missing = a.findings.find((f) => f.code === 'MISSING_CHAIN')!;
    expect(missing.subject).toEqual({ kind: 'chain', name: 'KUBE-SEP-GONE', service: 'demo/dup:dns' });
    const dup = a.findings.find((f) => f.code === 'DUPLICATE_ENDPOINT')!;
    expect(dup.subject).toEqual({ kind: 'service', id: 'demo/dup:dns' });
    expect(a.findings.map(serviceOf).every((s) => typeof s === 'string')).toBe(true);
  });
});
