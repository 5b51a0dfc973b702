/**
 * `nft list ruleset`: kube-proxy's own `kube-proxy` table (nftables mode) is
 * kept as text per chain and map, with its sets' timeouts; iptables-nft's
 * translation of iptables rules (KUBE-* chains in `table ip nat` / `table ip6
 * nat`) becomes iptables rules in the rule set of the table's family.
 */
import type { NftKubeProxy, Rule } from '../dump.js';
import { stripHostMask } from './iptables-save.js';
import type { RuleSetBuilder } from './iptables-save.js';
import { detach, TextLists } from '../texts.js';

/** nft's time format: 3h, 10800s, 1h30m, 2d, 500ms -> seconds. */
export function nftDurationSeconds(text: string): number | undefined {
  let total = 0;
  let matched = '';
  for (const m of text.matchAll(/(\d+)(ms|d|h|m|s)/g)) {
    const n = Number(m[1]);
    total += m[2] === 'd' ? n * 86400 : m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
    matched += m[0];
  }
  return matched === text && matched !== '' ? total : undefined;
}

/** Convert an iptables-nft rule line (`nft list ruleset`) into the iptables model. */
export function parseNftTranslatedRule(table: string, chain: string, text: string, line: number): Rule {
  const rule: Rule = { table, chain, goto: false, conditional: false, line };
  const comment = /comment "((?:[^"\\]|\\.)*)"/.exec(text);
  if (comment?.[1] !== undefined) rule.comment = comment[1];
  const body = text.replace(/comment "(?:[^"\\]|\\.)*"/, '');
  const rnd = /meta random & (?:2147483647|0x7fffffff) < (\d+)/.exec(body);
  if (rnd?.[1] !== undefined) {
    rule.probability = Number((Number(rnd[1]) / 2147483648).toFixed(11));
    rule.probabilityText = `meta random < ${rnd[1]}`;
  }
  const counter = /counter packets (\d+) bytes (\d+)/.exec(body);
  if (counter?.[1] !== undefined && counter[2] !== undefined) rule.counters = { packets: Number(counter[1]), bytes: Number(counter[2]) };
  const jump = /\b(jump|goto) (\S+)/.exec(body);
  if (jump?.[2] !== undefined) {
    rule.target = jump[2];
    rule.goto = jump[1] === 'goto';
  }
  const dnat = /\bdnat to (\S+)/.exec(body);
  if (dnat?.[1] !== undefined) {
    rule.target = 'DNAT';
    rule.dnat = dnat[1];
  }
  for (const verdict of ['drop', 'reject', 'accept', 'return', 'masquerade']) {
    if (rule.target === undefined && new RegExp(`\\b${verdict}\\b`).test(body)) rule.target = verdict.toUpperCase();
  }
  const daddr = /ip6? daddr (!= )?(\S+)/.exec(body);
  if (daddr?.[2] !== undefined) {
    rule.dest = stripHostMask(daddr[2]);
    if (daddr[1]) rule.destNegated = true;
    rule.conditional = true;
  }
  const saddr = /ip6? saddr (!= )?(\S+)/.exec(body);
  if (saddr?.[2] !== undefined) {
    rule.source = stripHostMask(saddr[2]);
    if (saddr[1]) rule.sourceNegated = true;
    rule.conditional = true;
  }
  const dport = /\b(tcp|udp|sctp) dport (\d+)/.exec(body);
  if (dport?.[1] !== undefined && dport[2] !== undefined) {
    rule.proto = dport[1];
    rule.dport = Number(dport[2]);
    rule.conditional = true;
  }
  const l4 = /meta l4proto (tcp|udp|sctp)/.exec(body);
  if (l4?.[1] !== undefined) rule.proto ??= l4[1];
  if (/fib (saddr|daddr) type local|mark |ct state|iifname|oifname/.test(body)) rule.conditional = true;
  if (/ip saddr @|recent/.test(body)) rule.recent = { name: 'nft', mode: 'rcheck' };
  return rule;
}

export class NftReader {
  /** kube-proxy's nftables-mode tables found. */
  readonly kubeProxyTables: NftKubeProxy[] = [];
  /** iptables-nft rules were translated into the iptables model. */
  translated = false;
  private table: { family: string; name: string } | undefined;
  private chain: string | undefined;
  private map: string | undefined;
  private inElements = false;
  private kp: NftKubeProxy | undefined;

  constructor(
    private readonly v4: RuleSetBuilder,
    private readonly v6: RuleSetBuilder,
  ) {}

  inTable(): boolean {
    return this.table !== undefined;
  }

  /** Take the line if it is nft's (inside a table, every line is); false otherwise. */
  line(text: string, lineNo: number): boolean {
    let line = text;
    const tableOpen = /^table (ip|ip6|inet) (\S+) \{$/.exec(line);
    if (tableOpen && tableOpen[1] !== undefined && tableOpen[2] !== undefined) {
      this.table = { family: tableOpen[1], name: tableOpen[2] };
      if (tableOpen[2] === 'kube-proxy') {
        this.kp = { family: tableOpen[1], chains: new TextLists(), maps: new TextLists(), setTimeouts: new Map() };
        this.kubeProxyTables.push(this.kp);
      } else this.kp = undefined;
      return true;
    }
    const table = this.table;
    if (table === undefined) return false;
    const kp = this.kp;
    if (this.inElements && this.map !== undefined) {
      // elements = { a, b,\n c }
      const closing = line.endsWith('}');
      if (kp) for (const e of splitElements(closing ? line.slice(0, -1) : line)) kp.maps.push(this.map, e);
      if (closing) this.inElements = false;
      return true;
    }
    const chainOpen = /^chain (\S+) \{$/.exec(line);
    if (chainOpen?.[1] !== undefined) {
      // kube-proxy's own chains are kept by their lists; iptables-nft's through the rule sets' names.
      this.chain = chainOpen[1];
      if (kp) kp.chains.add(this.chain);
      else this.builder().table(table.name).declare(this.chain);
      return true;
    }
    const mapOpen = /^(map|set) (\S+) \{$/.exec(line);
    if (mapOpen?.[2] !== undefined) {
      this.map = mapOpen[2];
      if (kp) kp.maps.add(this.map);
      return true;
    }
    if (line === '}') {
      if (this.chain !== undefined) this.chain = undefined;
      else if (this.map !== undefined) this.map = undefined;
      else {
        this.table = undefined;
        this.kp = undefined;
      }
      return true;
    }
    if (this.map !== undefined) {
      const timeout = /^timeout (\S+)$/.exec(line);
      if (timeout?.[1] !== undefined && kp) {
        const secs = nftDurationSeconds(timeout[1]);
        if (secs !== undefined) kp.setTimeouts.set(detach(this.map), secs);
        return true;
      }
      const el = /^elements = \{ ?(.*)$/.exec(line);
      if (el?.[1] !== undefined) {
        line = el[1];
        const closing = line.endsWith('}');
        if (kp) for (const e of splitElements(closing ? line.slice(0, -1) : line)) kp.maps.push(this.map, e);
        this.inElements = !closing;
      }
      return true;
    }
    if (this.chain !== undefined) {
      if (/^type \S+ hook/.test(line) || line.startsWith('policy ') || line.startsWith('comment ')) return true;
      if (kp) kp.chains.push(this.chain, line);
      else if (this.chain.startsWith('KUBE-') || /^(PREROUTING|OUTPUT|POSTROUTING|INPUT|FORWARD)$/.test(this.chain)) {
        this.builder().add(parseNftTranslatedRule(table.name, this.chain, line, lineNo));
        this.translated = true;
      }
      return true;
    }
    return true; // table-level lines (comment, flags)
  }

  /** iptables-nft's `table ip6 nat` belongs to the IPv6 rule set. */
  private builder(): RuleSetBuilder {
    return this.table?.family === 'ip6' ? this.v6 : this.v4;
  }
}

/** Split `a : b, c : d` element lists at top-level commas (comments may hold commas in quotes). */
function splitElements(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      if (cur.trim() !== '') out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}
