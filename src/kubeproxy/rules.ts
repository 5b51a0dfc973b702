/**
 * Rule dumps as kube-proxy leaves them on a node, parsed into one model:
 *
 * - `iptables-save` (nat and filter tables; with or without `-c` counters;
 *   matches in any order, as kube-proxy wrote them or as iptables-save prints
 *   them);
 * - `nft list ruleset`: kube-proxy's nftables mode (`table ip kube-proxy`) is
 *   kept apart, and iptables-nft's translation of iptables rules (`table ip
 *   nat` with KUBE-* chains, `meta random & 2147483647 < N` for statistic) is
 *   turned into the same rules as iptables-save's;
 * - `ipvsadm -Ln`.
 *
 * Detection is by content, never by file name.
 */
import { InputError } from '../errors.js';
import { looksBinary } from '../input.js';

export interface Rule {
  table: string;
  chain: string;
  /** Jump (-j / jump) or goto (-g / goto) target, or a verdict (DNAT, DROP, ...). */
  target?: string;
  goto: boolean;
  /** -m statistic --mode random --probability, or iptables-nft's meta random. */
  probability?: number;
  /** The probability exactly as written. */
  probabilityText?: string;
  comment?: string;
  /** -m recent: session affinity. */
  recent?: { name: string; mode: 'rcheck' | 'set'; seconds?: number };
  /** DNAT --to-destination. */
  dnat?: string;
  dest?: string;
  destNegated?: boolean;
  source?: string;
  sourceNegated?: boolean;
  proto?: string;
  dport?: number;
  /** The rule has matches other than comment, statistic and recent: it applies to some packets only. */
  conditional: boolean;
  counters?: { packets: number; bytes: number };
  line: number;
}

export interface RuleSet {
  /** table -> chain -> rules in order. */
  chains: Map<string, Map<string, Rule[]>>;
  /** table -> declared chain names. */
  declared: Map<string, Set<string>>;
  lines: number;
}

export interface NftKubeProxy {
  family: string;
  /** chain name -> rule texts. */
  chains: Map<string, string[]>;
  /** map/set name -> element texts. */
  maps: Map<string, string[]>;
  /** set name -> its `timeout` in seconds (the affinity sets: sessionAffinity timeoutSeconds). */
  setTimeouts: Map<string, number>;
}

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

export interface IpvsService {
  proto: string;
  address: string;
  port: number;
  scheduler: string;
  persistentSeconds?: number;
  reals: Array<{ address: string; port: number; forward: string; weight: number; active: number; inactive: number }>;
  line: number;
}

export interface ParsedDumps {
  /** IPv4 rules (iptables-save); IPv6 rules (ip6tables-save) apart: kube-proxy names a dual-stack Service's chains alike in both. */
  iptables: RuleSet | null;
  iptables6: RuleSet | null;
  /** iptables rules found in nft output (iptables-nft). */
  iptablesFromNft: boolean;
  nft: NftKubeProxy[];
  ipvs: IpvsService[] | null;
  kinds: string[];
  warnings: string[];
}

/** An IPv6 address as the argument of -d, -s or --to-destination (ip6tables-save). */
const IPV6_ADDRESS_ARG = /(?:^|\s)(?:-d|-s|--to-destination|--destination|--source) \[?[0-9a-fA-F]*:[0-9a-fA-F]*:/;

const EXPECTED = 'expected iptables-save output, `nft list ruleset` or `ipvsadm -Ln`';

/** Split an iptables-save rule into words, honouring "double quotes" and \\ escapes. */
export function tokenize(line: string): string[] {
  if (!line.includes('"')) return line.split(' ').filter((w) => w !== '');
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && line.charCodeAt(i) === 32) i++;
    if (i >= n) break;
    if (line[i] === '"') {
      let j = i + 1;
      let s = '';
      while (j < n && line[j] !== '"') {
        if (line[j] === '\\' && j + 1 < n) {
          s += line[j + 1];
          j += 2;
        } else s += line[j++];
      }
      out.push(s);
      i = j + 1;
    } else {
      let j = i;
      while (j < n && line.charCodeAt(j) !== 32) j++;
      out.push(line.slice(i, j));
      i = j;
    }
  }
  return out;
}

function stripHostMask(addr: string): string {
  return addr.replace(/\/(32|128)$/, '');
}

/** Parse one `-A CHAIN ...` line (after any `[p:b]` counters). */
export function parseIptablesRule(table: string, words: string[], line: number): Rule {
  const rule: Rule = { table, chain: words[1] ?? '', goto: false, conditional: false, line };
  let negate = false;
  for (let i = 2; i < words.length; i++) {
    const w = words[i]!;
    const next = (): string => words[++i] ?? '';
    switch (w) {
      case '!':
        negate = true;
        continue;
      case '-j':
        rule.target = next();
        break;
      case '-g':
        rule.target = next();
        rule.goto = true;
        break;
      case '-m': {
        const mod = next();
        if (mod !== 'comment' && mod !== 'statistic' && mod !== 'recent' && mod !== 'tcp' && mod !== 'udp' && mod !== 'sctp') {
          rule.conditional = true;
        }
        break;
      }
      case '--comment':
        rule.comment = next();
        break;
      case '--mode':
        if (next() !== 'random') rule.conditional = true;
        break;
      case '--probability': {
        const t = next();
        rule.probabilityText = t;
        rule.probability = Number(t);
        break;
      }
      case '--name':
        (rule.recent ??= { name: '', mode: 'set' }).name = next();
        break;
      case '--rcheck':
        (rule.recent ??= { name: '', mode: 'rcheck' }).mode = 'rcheck';
        break;
      case '--set':
        (rule.recent ??= { name: '', mode: 'set' }).mode = 'set';
        break;
      case '--seconds':
        (rule.recent ??= { name: '', mode: 'rcheck' }).seconds = Number(next());
        break;
      case '--reap':
      case '--rsource':
        break;
      case '--mask':
        next();
        break;
      case '--to-destination':
        rule.dnat = next();
        break;
      case '-d':
        rule.dest = stripHostMask(next());
        if (negate) rule.destNegated = true;
        rule.conditional = true;
        break;
      case '-s':
        rule.source = stripHostMask(next());
        if (negate) rule.sourceNegated = true;
        rule.conditional = true;
        break;
      case '-p':
        rule.proto = next();
        break;
      case '--dport':
        rule.dport = Number(next());
        rule.conditional = true;
        break;
      default:
        // an option of some other match (-i, --src-type, --mark, ...): the rule is conditional
        if (w.charCodeAt(0) === 45 /* - */) {
          rule.conditional = true;
          const v = words[i + 1];
          if (v !== undefined && v.charCodeAt(0) !== 45) i++;
        }
    }
    negate = false;
  }
  return rule;
}

function ensure<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) {
    v = make();
    m.set(k, v);
  }
  return v;
}

/** A RuleSet being filled; rules of one chain come together, so the last chain's list is kept at hand. */
function ruleSetBuilder(): { rs: RuleSet; add: (rule: Rule) => void } {
  const rs: RuleSet = { chains: new Map(), declared: new Map(), lines: 0 };
  let last: { table: string; chain: string; rules: Rule[] } | undefined;
  const add = (rule: Rule): void => {
    rs.lines++;
    if (last !== undefined && last.table === rule.table && last.chain === rule.chain) {
      last.rules.push(rule);
      return;
    }
    const chains = ensure(rs.chains, rule.table, () => new Map<string, Rule[]>());
    const rules = ensure(chains, rule.chain, () => []);
    rules.push(rule);
    last = { table: rule.table, chain: rule.chain, rules };
  };
  return { rs, add };
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

const IPVS_SERVICE = /^(TCP|UDP|SCTP|FWM)\s+(\S+)\s+(\S+)(.*)$/;
const IPVS_REAL = /^->\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/;

function splitHostPort(hp: string): { address: string; port: number } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(hp);
  if (!m || m[1] === undefined || m[2] === undefined) return { address: hp, port: 0 };
  return { address: m[1], port: Number(m[2]) };
}

export function parseDumps(text: string): ParsedDumps {
  if (text.trim() === '') throw new InputError(`empty input: ${EXPECTED}`);
  if (looksBinary(text)) throw new InputError(`binary data on input: ${EXPECTED}`);
  const out: ParsedDumps = { iptables: null, iptables6: null, iptablesFromNft: false, nft: [], ipvs: null, kinds: [], warnings: [] };
  const { rs, add: addRule } = ruleSetBuilder();
  const v6 = ruleSetBuilder();
  // One iptables-save table section (`*nat` ... `COMMIT`), kept until its family is known:
  // from ip6tables-save's "# Generated by" line, else from IPv6 addresses in its rules,
  // else the other family when this table was already read in the first.
  let section: { table: string; rules: Rule[]; declared: Set<string>; v6: boolean } | undefined;
  let familyHint: 'ipv4' | 'ipv6' | undefined;
  const flushSection = (): void => {
    if (section === undefined) return;
    const isV6 = familyHint === 'ipv6' || (familyHint === undefined && section.v6);
    const target = isV6 ? v6 : { rs, add: addRule };
    const declared = ensure(target.rs.declared, section.table, () => new Set());
    for (const c of section.declared) declared.add(c);
    for (const r of section.rules) target.add(r);
    section = undefined;
  };
  let table = '';
  let sawIptables = false;
  // nft state
  let nftTable: { family: string; name: string } | undefined;
  let nftChain: string | undefined;
  let nftMap: string | undefined;
  let nftMapElems: string[] | undefined;
  let inElements = false;
  let kp: NftKubeProxy | undefined;
  let ipvs: IpvsService[] | undefined;
  let unrecognised = 0;

  const lines = text.split('\n');
  for (let idx = 0; idx < lines.length; idx++) {
    const raw = lines[idx]!;
    const lineNo = idx + 1;
    let line = raw.trim();
    if (line === '') continue;

    // ---- iptables-save ----
    if (nftTable === undefined) {
      if (line.charCodeAt(0) === 42 /* * */ && /^\*[a-z]+$/.test(line)) {
        flushSection();
        table = line.slice(1);
        sawIptables = true;
        section = { table, rules: [], declared: new Set(), v6: false };
        continue;
      }
      if (line === 'COMMIT') {
        flushSection();
        continue;
      }
      if (line.charCodeAt(0) === 58 /* : */ && table !== '') {
        const sp = line.indexOf(' ');
        section ??= { table, rules: [], declared: new Set(), v6: false };
        section.declared.add(line.slice(1, sp < 0 ? undefined : sp));
        continue;
      }
      if ((line.charCodeAt(0) === 91 /* [ */ && /^\[\d+:\d+\] -A /.test(line)) || line.startsWith('-A ')) {
        let rule: Rule;
        if (line.charCodeAt(0) === 91) {
          const close = line.indexOf(']');
          const [p, b] = line.slice(1, close).split(':');
          rule = parseIptablesRule(table === '' ? 'nat' : table, tokenize(line.slice(close + 2)), lineNo);
          rule.counters = { packets: Number(p), bytes: Number(b) };
        } else {
          rule = parseIptablesRule(table === '' ? 'nat' : table, tokenize(line), lineNo);
        }
        if (table === '') table = 'nat';
        sawIptables = true;
        section ??= { table, rules: [], declared: new Set(), v6: false };
        if (!section.v6 && IPV6_ADDRESS_ARG.test(line)) section.v6 = true;
        section.rules.push(rule);
        continue;
      }
      if (line.startsWith('#')) {
        const gen = /^# Generated by (ip6?)tables-save/.exec(line);
        if (gen) {
          flushSection();
          familyHint = gen[1] === 'ip6' ? 'ipv6' : 'ipv4';
        }
        continue;
      }
    }

    // ---- nft list ruleset ----
    const tableOpen = /^table (ip|ip6|inet) (\S+) \{$/.exec(line);
    if (tableOpen && tableOpen[1] !== undefined && tableOpen[2] !== undefined) {
      nftTable = { family: tableOpen[1], name: tableOpen[2] };
      if (tableOpen[2] === 'kube-proxy') {
        kp = { family: tableOpen[1], chains: new Map(), maps: new Map(), setTimeouts: new Map() };
        out.nft.push(kp);
      } else kp = undefined;
      ensure(rs.declared, nftTable.name, () => new Set());
      continue;
    }
    if (nftTable !== undefined) {
      if (inElements && nftMapElems) {
        // elements = { a, b,\n c }
        const closing = line.endsWith('}');
        const body = closing ? line.slice(0, -1) : line;
        for (const e of splitElements(body)) nftMapElems.push(e);
        if (closing) inElements = false;
        continue;
      }
      const chainOpen = /^chain (\S+) \{$/.exec(line);
      if (chainOpen?.[1] !== undefined) {
        nftChain = chainOpen[1];
        if (kp) kp.chains.set(nftChain, []);
        else ensure(rs.declared, nftTable.name, () => new Set()).add(nftChain);
        continue;
      }
      const mapOpen = /^(map|set) (\S+) \{$/.exec(line);
      if (mapOpen?.[2] !== undefined) {
        nftMap = mapOpen[2];
        nftMapElems = [];
        if (kp) kp.maps.set(nftMap, nftMapElems);
        continue;
      }
      if (line === '}') {
        if (nftChain !== undefined) nftChain = undefined;
        else if (nftMap !== undefined) {
          nftMap = undefined;
          nftMapElems = undefined;
        } else {
          nftTable = undefined;
          kp = undefined;
        }
        continue;
      }
      if (nftMap !== undefined && nftMapElems) {
        const timeout = /^timeout (\S+)$/.exec(line);
        if (timeout?.[1] !== undefined && kp) {
          const secs = nftDurationSeconds(timeout[1]);
          if (secs !== undefined) kp.setTimeouts.set(nftMap, secs);
          continue;
        }
        const el = /^elements = \{ ?(.*)$/.exec(line);
        if (el?.[1] !== undefined) {
          line = el[1];
          const closing = line.endsWith('}');
          for (const e of splitElements(closing ? line.slice(0, -1) : line)) nftMapElems.push(e);
          inElements = !closing;
        }
        continue;
      }
      if (nftChain !== undefined) {
        if (/^type \S+ hook/.test(line) || line.startsWith('policy ') || line.startsWith('comment ')) continue;
        if (kp) kp.chains.get(nftChain)?.push(line);
        else if (nftChain.startsWith('KUBE-') || /^(PREROUTING|OUTPUT|POSTROUTING|INPUT|FORWARD)$/.test(nftChain)) {
          addRule(parseNftTranslatedRule(nftTable.name, nftChain, line, lineNo));
          out.iptablesFromNft = true;
        }
        continue;
      }
      continue; // table-level lines (comment, flags)
    }

    // ---- ipvsadm -Ln ----
    if (/^IP Virtual Server version/.test(line) || /^Prot LocalAddress:Port/.test(line) || /^-> RemoteAddress:Port/.test(line)) {
      ipvs ??= [];
      continue;
    }
    const svc = IPVS_SERVICE.exec(line);
    if (svc && svc[2] !== undefined && svc[3] !== undefined && (ipvs !== undefined || /:\d+$/.test(svc[2]))) {
      ipvs ??= [];
      const { address, port } = splitHostPort(svc[2]);
      const s: IpvsService = { proto: (svc[1] ?? '').toLowerCase(), address, port, scheduler: svc[3], reals: [], line: lineNo };
      const pers = /persistent (\d+)/.exec(svc[4] ?? '');
      if (pers?.[1] !== undefined) s.persistentSeconds = Number(pers[1]);
      ipvs.push(s);
      continue;
    }
    const real = IPVS_REAL.exec(line);
    if (real && ipvs !== undefined && ipvs.length > 0 && real[1] !== undefined) {
      const { address, port } = splitHostPort(real[1]);
      ipvs[ipvs.length - 1]!.reals.push({ address, port, forward: real[2] ?? '', weight: Number(real[3]), active: Number(real[4]), inactive: Number(real[5]) });
      continue;
    }
    unrecognised++;
  }

  flushSection();
  if (v6.rs.lines > 0) out.iptables6 = v6.rs;
  if (sawIptables || out.iptablesFromNft) {
    out.iptables = rs;
    out.kinds.push(out.iptablesFromNft && !sawIptables ? 'iptables-nft (nft list ruleset)' : 'iptables-save');
  }
  if (out.nft.length > 0) out.kinds.push('nftables (kube-proxy table)');
  for (const k of out.nft) {
    const serviceChains = [...k.chains.keys()].filter((c) => /^(service|local)-/.test(c)).length;
    if (serviceChains > 0 && !k.maps.has('service-ips')) {
      out.warnings.push(`the kube-proxy table has ${serviceChains} service chains but no service-ips map (a partial dump, e.g. \`nft list chain\`): cluster IPs and ports are unknown; endpoints are read from the chains`);
    }
  }
  if (ipvs !== undefined) {
    out.ipvs = ipvs;
    out.kinds.push('ipvsadm');
  }
  if (out.kinds.length === 0) throw new InputError(`nothing recognisable in the input: ${EXPECTED}`);
  if (unrecognised > 0) out.warnings.push(`${unrecognised} line${unrecognised === 1 ? '' : 's'} not recognised and ignored`);
  return out;
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
