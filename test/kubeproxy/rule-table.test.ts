import { describe, expect, it } from 'vitest';
import type { Rule } from '../../src/kubeproxy/dump.js';
import { Names, RuleTable } from '../../src/kubeproxy/rule-table.js';
import { detach, TextLists } from '../../src/kubeproxy/texts.js';
import { analyseDumps } from '../../src/kubeproxy/analyse.js';
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
    // Its own names: what the second table holds goes over by name, not by id.
    const second = new RuleTable('nat', new Names());
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

describe('texts kept outside the heap', () => {
  it('names get one id each, found again by any equal string, ASCII or not (against a Map)', () => {
    const r = random(5);
    const names = new Names();
    const reference = new Map<string, number>();
    const pool = ['KUBE-SEP-', 'endpoint-', 'ü', '✓', 'a', '/', '0', '9', 'Z', ''];
    for (let i = 0; i < 20000; i++) {
      let s = '';
      const parts = Math.floor(r() * 6);
      for (let k = 0; k < parts; k++) s += pool[Math.floor(r() * pool.length)]!;
      const id = names.id(s);
      if (!reference.has(s)) reference.set(s, reference.size);
      expect(id).toBe(reference.get(s));
    }
    expect(names.count).toBe(reference.size);
    for (const [s, id] of reference) {
      expect(names.get(id)).toBe(s);
      expect(names.find(s)).toBe(id);
      expect(names.find(`${s}#`)).toBe(reference.get(`${s}#`) ?? -1);
    }
    expect(names.get(-1)).toBeUndefined();
  });

  it('named lists give back each list\'s lines in order, however the pushes interleave (against plain arrays)', () => {
    const r = random(11);
    const lists = new TextLists();
    const reference = new Map<string, string[]>();
    const names = ['service-A-ns/a/tcp/http', 'endpoint-B-ns/a/tcp/http__10.0.0.1/80', 'chain ü ✓', 'x'];
    for (let i = 0; i < 2000; i++) {
      const name = names[Math.floor(r() * names.length)]!;
      // Repeated lines stay apart: a chain may hold the same rule twice.
      const line = r() < 0.2 ? 'jump mark-for-masquerade' : `rule ${i} dnat to 10.244.${i % 256}.1:80 comment "ü ${i}"`;
      lists.push(name, line);
      reference.set(name, [...(reference.get(name) ?? []), line]);
    }
    lists.add('empty-chain');
    reference.set('empty-chain', []);
    for (const [name, lines] of reference) expect(lists.get(name), name).toEqual(lines);
    expect(lists.get('never-added')).toBeUndefined();
    expect(lists.items).toBe(2000);
    expect(new Set(lists.keys())).toEqual(new Set(reference.keys()));
    expect(lists.has('x') && !lists.has('y')).toBe(true);
  });

  it('detach copies a slice of a line into a string of its own, equal to it, whatever the characters', () => {
    const line = 'add rule ip kube-proxy endpoint-ÄÖÜ-ns/naïve/tcp/p✓__10.1.1.1/80 ip saddr 10.1.1.1';
    const word = line.slice(23, 67);
    expect(detach(word)).toBe(word);
    expect(detach('short')).toBe('short');
  });
});

describe('many Services', () => {
  it('200,000 IPVS virtual services are all reported: none is lost to a call with too many arguments', () => {
    const lines = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn'];
    for (let i = 0; i < 200_000; i++) lines.push(`TCP  10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}:80 rr`);
    const a = analyseDumps(parseDumps(lines.join('\n')));
    expect(a.services).toHaveLength(200_000);
  });
});
