import { describe, expect, it } from 'vitest';
import type { Rule } from '../../src/kubeproxy/dump.js';
import { Names, RuleTable } from '../../src/kubeproxy/rule-table.js';
import { parseDumps } from '../../src/kubeproxy/rules.js';
import { readFixture } from '../helpers/run.js';

/** A small seeded generator (mulberry32): the same rules every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHAINS = ['KUBE-SERVICES', 'KUBE-SVC-AAAA', 'KUBE-SEP-1', 'KUBE-SEP-2', 'KUBE-EXT-AAAA', 'KUBE-MARK-MASQ'];
const COMMENTS = ['ns/svc:http cluster IP', 'ns/svc:http -> 10.244.1.5:8080', 'ns/naïve:✓ -> [fd00::1]:53', 'ns/svc:http', ''];
const TARGETS = ['KUBE-SEP-1', 'KUBE-SEP-2', 'KUBE-MARK-MASQ', 'DNAT', 'RETURN', 'KUBE-SVC-AAAA'];

/** Rules as a reader would make them, every optional field present or absent at random. */
function rules(n: number, seed: number): Rule[] {
  const r = random(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const maybe = <T,>(v: () => T): T | undefined => (r() < 0.5 ? v() : undefined);
  const out: Rule[] = [];
  let chain = pick(CHAINS);
  for (let i = 0; i < n; i++) {
    // Mostly a chain's rules together, sometimes interleaved (two dumps, or nft's translation).
    if (r() < 0.3) chain = pick(CHAINS);
    const rule: Rule = { table: 'nat', chain, goto: r() < 0.2, conditional: r() < 0.5, line: 1 + Math.floor(r() * 1e6) };
    const set = <K extends keyof Rule>(k: K, v: Rule[K] | undefined): void => {
      if (v !== undefined) rule[k] = v;
    };
    set('target', maybe(() => pick(TARGETS)));
    if (r() < 0.4) {
      const p = Number((1 / (2 + Math.floor(r() * 5))).toFixed(11));
      rule.probability = p;
      rule.probabilityText = p.toFixed(11);
    }
    set('comment', maybe(() => pick(COMMENTS)));
    set('dnat', maybe(() => `10.244.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}:${Math.floor(r() * 65536)}`));
    set('dest', maybe(() => pick(['10.96.0.10', 'fd00::10', '127.0.0.0/8'])));
    if (rule.dest !== undefined && r() < 0.3) rule.destNegated = true;
    set('source', maybe(() => pick(['10.244.0.0/16', '10.244.3.3'])));
    if (rule.source !== undefined && r() < 0.3) rule.sourceNegated = true;
    set('proto', maybe(() => pick(['tcp', 'udp', 'sctp'])));
    set('dport', maybe(() => pick([0, 53, 80, 65535, NaN])));
    if (r() < 0.05) rule.recent = { name: pick(['KUBE-SEP-1', 'nft']), mode: pick(['rcheck', 'set'] as const), ...(r() < 0.5 ? { seconds: 10800 } : {}) };
    if (r() < 0.3) rule.counters = { packets: Math.floor(r() * 1e12), bytes: Math.floor(r() * 1e15) };
    out.push(rule);
  }
  return out;
}

function table(rs: Rule[], declared: string[]): RuleTable {
  const t = new RuleTable('nat', new Names());
  for (const r of rs) t.push(r);
  for (const d of declared) t.declare(d);
  t.seal();
  return t;
}

describe('rule columns', () => {
  it('give back every rule as pushed, each chain in its order (against the rules filtered by chain)', () => {
    const rs = rules(5000, 7);
    const declared = ['KUBE-SEP-EMPTY', 'KUBE-SEP-1', 'KUBE-NODEPORTS'];
    const t = table(rs, declared);
    expect(t.count).toBe(rs.length);
    for (const chain of [...CHAINS, 'KUBE-SEP-EMPTY', 'KUBE-NODEPORTS', 'NOT-A-CHAIN']) {
      const expected = rs.filter((r) => r.chain === chain);
      expect([...t.rules(chain)].map((i) => t.rule(i)), chain).toEqual(expected);
      expect(t.hasRules(chain)).toBe(expected.length > 0);
      expect(t.has(chain)).toBe(expected.length > 0 || declared.includes(chain));
    }
    expect(new Set(t.chains())).toEqual(new Set(rs.map((r) => r.chain)));
    expect(new Set(t.declared())).toEqual(new Set([...rs.map((r) => r.chain), ...declared]));
    // The accessors agree with the objects, rule by rule.
    for (let i = 0; i < rs.length; i += 97) {
      const r = rs[i]!;
      expect([t.chain(i), t.target(i), t.comment(i), t.dnat(i), t.dest(i), t.dport(i), t.probability(i), t.conditional(i), t.line(i)]).toEqual([
        r.chain, r.target, r.comment, r.dnat, r.dest, r.dport, r.probability, r.conditional, r.line,
      ]);
    }
  });

  it('a port that is not a whole number reads back as NaN, not as a port', () => {
    const t = table([{ table: 'nat', chain: 'X', goto: false, conditional: true, line: 1, dport: 80.5 }, { table: 'nat', chain: 'X', goto: false, conditional: true, line: 2, dport: -3 }], []);
    expect([t.dport(0), t.dport(1)]).toEqual([NaN, NaN]);
  });

  it('a table read twice keeps both: the second one\'s rules after the first\'s in each chain', () => {
    const a = rules(300, 1);
    const b = rules(300, 2);
    const names = new Names();
    const first = new RuleTable('nat', names);
    for (const r of a) first.push(r);
    first.declare('KUBE-SEP-A');
    const second = new RuleTable('nat', names);
    for (const r of b) second.push(r);
    second.declare('KUBE-SEP-B');
    first.append(second);
    first.seal();
    for (const chain of CHAINS) expect([...first.rules(chain)].map((i) => first.rule(i))).toEqual([...a, ...b].filter((r) => r.chain === chain));
    expect(first.has('KUBE-SEP-A') && first.has('KUBE-SEP-B')).toBe(true);
  });

  it('iptables-save fixtures: each chain holds the rule lines of that chain, in the dump\'s order (against the text)', () => {
    for (const file of ['kube-proxy-overall.rules', 'iptables-save-overall.txt']) {
      const text = readFixture(`svc/${file}`);
      const nat = parseDumps(text).iptables?.tables.get('nat');
      expect(nat).toBeDefined();
      if (nat === undefined) continue;
      const lines = text.split('\n');
      // The nat section's `-A CHAIN` lines by chain, with their line numbers, read from the text alone.
      const start = lines.indexOf('*nat');
      const end = lines.indexOf('COMMIT', start);
      const byChain = new Map<string, number[]>();
      for (let i = start; i < end; i++) {
        const m = /^(?:\[\d+:\d+\] )?-A (\S+) /.exec(lines[i]!);
        if (m?.[1] !== undefined) byChain.set(m[1], [...(byChain.get(m[1]) ?? []), i + 1]);
      }
      expect(byChain.size).toBeGreaterThan(10);
      for (const [chain, lineNos] of byChain) expect([...nat.rules(chain)].map((i) => nat.line(i)), `${file} ${chain}`).toEqual(lineNos);
      expect(new Set(nat.chains())).toEqual(new Set(byChain.keys()));
    }
  });
});
