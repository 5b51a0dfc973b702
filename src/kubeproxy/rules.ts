/**
 * Rule dumps as kube-proxy leaves them on a node, parsed into one model:
 *
 * - `iptables-save` and `ip6tables-save` (nat and filter tables; with or
 *   without `-c` counters; matches in any order), one rule set per family:
 *   ./formats/iptables-save.ts;
 * - `nft list ruleset`: kube-proxy's nftables mode (`table ip kube-proxy`) is
 *   kept apart, and iptables-nft's translation of iptables rules (`table ip
 *   nat` with KUBE-* chains) is turned into the same rules as iptables-save's:
 *   ./formats/nft.ts;
 * - `ipvsadm -Ln`: ./formats/ipvsadm.ts.
 *
 * Detection is by content, never by file name: each line goes to the reader
 * whose block it is in, or to the first that recognises it.
 */
import { InputError } from '../errors.js';
import { looksBinary } from '../text.js';
import { IptablesSaveReader, ruleSetBuilder } from './formats/iptables-save.js';
import { IpvsadmReader } from './formats/ipvsadm.js';
import { NftReader } from './formats/nft.js';
import { Names } from './rule-table.js';

export { tokenize } from './formats/iptables-save.js';
export { parseNftTranslatedRule, nftDurationSeconds } from './formats/nft.js';

export type { IpvsService, NftKubeProxy, ParsedDumps, Rule, RuleSet } from './dump.js';
export type { RuleTable } from './rule-table.js';
import type { ParsedDumps } from './dump.js';

export const EXPECTED = 'expected iptables-save output, `nft list ruleset` or `ipvsadm -Ln`';

/**
 * The dumps read a line at a time, as they arrive: `line` each, then `finish`. Only the model is kept, never the
 * text (a 200 MiB dump is not held whole).
 */
export class DumpParser {
  /** Every name of the dump once (chains, targets, protocols); each table keeps its comments and addresses. */
  private readonly names = new Names();
  private readonly v4 = ruleSetBuilder(this.names);
  private readonly v6 = ruleSetBuilder(this.names);
  private readonly iptables = new IptablesSaveReader(this.v4, this.v6, this.names);
  private readonly nft = new NftReader(this.v4, this.v6);
  private readonly ipvs = new IpvsadmReader();
  private unrecognised = 0;
  private last = '';
  private lineNo = 0;
  private checked = false;

  /** The first text read, checked for binary data (NUL bytes, control characters); later calls return at once. */
  check(first: string): void {
    if (this.checked) return;
    this.checked = true;
    if (looksBinary(first)) throw new InputError(`binary data on input: ${EXPECTED}`);
  }

  line(raw: string): void {
    const line = raw.trim();
    this.lineNo++;
    if (line === '') return;
    this.last = line;
    // Inside an nft table every line is nft's; elsewhere the first reader that knows the line takes it.
    if (this.nft.inTable()) {
      this.nft.line(line, this.lineNo);
      return;
    }
    if (this.iptables.line(line, this.lineNo) || this.nft.line(line, this.lineNo) || this.ipvs.line(line, this.lineNo)) return;
    this.unrecognised++;
  }

  finish(): ParsedDumps {
    if (this.last === '') throw new InputError(`empty input: ${EXPECTED}`);
    const { iptables, nft, ipvs, v4, v6, last, unrecognised } = this;
    iptables.end();
    for (const rs of [v4.rs, v6.rs]) for (const t of rs.tables.values()) t.seal();
    const opens = (s: string): number => s.split('{').length - s.split('}').length;
    const truncated =
      iptables.cutIn !== null
        ? `the ${iptables.cutIn} table of iptables-save ends without COMMIT`
        : nft.inTable()
          ? 'an nft table is never closed, its braces open at the end'
          : /^add (rule|element|map|chain|set) /.test(last) && opens(last) > 0
            ? 'its last nft line stops inside a { } block'
            : null;

    const out: ParsedDumps = { iptables: null, iptables6: null, iptablesFromNft: nft.translated, nft: nft.kubeProxyTables, ipvs: null, kinds: [], warnings: [], truncated };
    if (v6.rs.lines > 0) out.iptables6 = v6.rs;
    if (iptables.seen || nft.translated) {
      out.iptables = v4.rs;
      out.kinds.push(nft.translated && !iptables.seen ? 'iptables-nft (nft list ruleset)' : 'iptables-save');
    }
    if (out.nft.length > 0) out.kinds.push('nftables (kube-proxy table)');
    for (const k of out.nft) {
      const serviceChains = [...k.chains.keys()].filter((c) => /^(service|local)-/.test(c)).length;
      if (serviceChains > 0 && !k.maps.has('service-ips')) {
        out.warnings.push(`the kube-proxy table has ${serviceChains} service chains but no service-ips map (a partial dump, e.g. \`nft list chain\`): cluster IPs and ports are unknown; endpoints are read from the chains`);
      }
    }
    if (ipvs.services !== undefined) {
      out.ipvs = ipvs.services;
      out.kinds.push('ipvsadm');
    }
    if (out.kinds.length === 0) throw new InputError(`nothing recognisable in the input: ${EXPECTED}`);
    if (unrecognised > 0) out.warnings.push(`${unrecognised} line${unrecognised === 1 ? '' : 's'} not recognised and ignored`);
    return out;
  }
}

/** A whole text into the parser, line by line with indexOf, not split: only the line at hand is alive. */
export function feedText(p: DumpParser, text: string): void {
  p.check(text);
  for (let at = 0; at <= text.length; ) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    p.line(text.slice(at, nl));
    at = nl + 1;
  }
}

/** A whole text's dumps (text handed over, and the tests'). */
export function parseDumps(text: string): ParsedDumps {
  if (text.trim() === '') throw new InputError(`empty input: ${EXPECTED}`);
  const p = new DumpParser();
  feedText(p, text);
  return p.finish();
}

