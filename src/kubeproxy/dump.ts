/**
 * The dump model every reader fills and every backend analyses: rules per table and chain (iptables-save, and
 * iptables-nft's translation), kube-proxy's nftables tables, IPVS services. Types only: the readers (formats/) and
 * the parser (rules.ts) both import it, neither imports the other's module for them.
 */
import type { RuleTable } from './rule-table.js';
import type { TextLists } from './texts.js';

/** One rule as read; a RuleTable keeps rules as columns and gives one back as this with `rule(i)`. */
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
  /** table name (nat, filter, ...) -> its rules, and its chains declared. */
  tables: Map<string, RuleTable>;
  /** Rules read. */
  lines: number;
}

export interface NftKubeProxy {
  family: string;
  /** chain name -> rule texts. */
  chains: TextLists;
  /** map/set name -> element texts. */
  maps: TextLists;
  /** set name -> its `timeout` in seconds (the affinity sets: sessionAffinity timeoutSeconds). */
  setTimeouts: Map<string, number>;
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
  /** Where the dump was cut short (no COMMIT, an nft table never closed); null when it ends whole. */
  truncated: string | null;
}
