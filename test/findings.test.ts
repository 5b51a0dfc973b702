/** The findings catalogue: one entry per code, severities enforced, subjects typed. */
import { describe, expect, it } from 'vitest';
import { CATALOGUE, finding, serviceOf, sortFindings } from '../src/findings.js';
import { analyseDumps } from '../src/kubeproxy/analyse.js';
import { parseDumps } from '../src/kubeproxy/rules.js';
import { readFixture } from './helpers/run.js';

describe('findings catalogue', () => {
  it('every entry names its command, a non-empty severity set and a rule', () => {
    for (const [code, e] of Object.entries(CATALOGUE)) {
      expect(['dnsbench', 'resolv', 'conntrack', 'svc', 'doctor', 'watch', 'drops'], code).toContain(e.command);
      expect(e.severities.length, code).toBeGreaterThan(0);
      expect(e.rule.length, code).toBeGreaterThan(5);
    }
  });

  it('a severity the code may not take is refused', () => {
    expect(() => finding({ code: 'SERVFAIL', severity: 'critical', subject: { kind: 'machine' }, message: 'x', evidence: { SERVFAIL: 1 } })).toThrow(/cannot be critical/);
    const ok = finding({ code: 'TABLE_PRESSURE', severity: 'critical', subject: { kind: 'conntrack-table' }, message: 'x', evidence: { count: 96, max: 100, usage: 0.96 } });
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

describe('one remedy per cause', () => {
  it('every kube-proxy backend gives a finding code the same advice', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { parseDumps } = await import('../src/kubeproxy/rules.js');
    const { analyseDumps } = await import('../src/kubeproxy/analyse.js');
    const dir = new URL('./fixtures/svc/', import.meta.url);
    const remedies = new Map<string, Set<string>>();
    const backends = new Map<string, Set<string>>();
    for (const f of readdirSync(dir)) {
      let a;
      try {
        a = analyseDumps(parseDumps(readFileSync(new URL(f, dir), 'utf8')));
      } catch {
        continue; // not a dump of its own (a rules file loaded by a netns test)
      }
      for (const x of a.findings) {
        if (!['NO_ENDPOINTS', 'NO_LOCAL_ENDPOINTS', 'MISSING_CHAIN'].includes(x.code)) continue;
        (remedies.get(x.code) ?? remedies.set(x.code, new Set()).get(x.code)!).add(x.remedy);
        (backends.get(x.code) ?? backends.set(x.code, new Set()).get(x.code)!).add(a.modes.join('+'));
      }
    }
    // And nftables with one endpoint chain cut out of a real dump: MISSING_CHAIN from a second backend.
    const nft = readFileSync(new URL('nft-kube-proxy-overall.txt', dir), 'utf8').split('\n');
    const at = nft.findIndex((l) => l.includes('chain endpoint-5OJB2KTY-'));
    const end = nft.findIndex((l, i) => i > at && /^\s*}$/.test(l));
    const cut = analyseDumps(parseDumps([...nft.slice(0, at), ...nft.slice(end + 1)].join('\n')));
    for (const x of cut.findings.filter((y) => y.code === 'MISSING_CHAIN')) {
      remedies.get('MISSING_CHAIN')?.add(x.remedy) ?? remedies.set('MISSING_CHAIN', new Set([x.remedy]));
      backends.get('MISSING_CHAIN')?.add('nftables') ?? backends.set('MISSING_CHAIN', new Set(['nftables']));
    }
    // Each code is raised by more than one backend, and with one remedy.
    for (const code of ['NO_ENDPOINTS', 'NO_LOCAL_ENDPOINTS', 'MISSING_CHAIN']) {
      expect(backends.get(code)?.size ?? 0, code).toBeGreaterThan(1);
      expect([...(remedies.get(code) ?? [])], code).toHaveLength(1);
    }
  });
});

describe('one builder', () => {
  it('every finding in the sources is built through finding() from the catalogue', async () => {
    const { readFileSync, readdirSync, statSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = new URL('../src/', import.meta.url).pathname;
    const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));
    const loose: string[] = [];
    for (const f of files(root)) {
      if (f.endsWith('/findings.ts')) continue;
      const text = readFileSync(f, 'utf8');
      const codes = [...text.matchAll(/code: '([A-Z][A-Z_]+)'/g)].filter((m) => Object.hasOwn(CATALOGUE, m[1]!));
      const built = (text.match(/finding\(\{/g) ?? []).length;
      if (codes.length !== built) loose.push(`${f.slice(root.length)}: ${codes.length} codes, ${built} built`);
    }
    expect(loose).toEqual([]);
  });
});
