/**
 * The rules of this network namespace that may have dropped DNS packets a rule's verdict dropped (NETFILTER_DROP at
 * nft_do_chain or ipt_do_table): `iptables-save` (and `ip6tables-save`) read for DROP and REJECT rules that name a DNS
 * port or the endpoint's address, each with its table and chain. The kernel does not say which rule: these are the
 * candidates, said as such; a rule that names neither (a default policy, a broader match) is not found here.
 */

export interface RuleCandidate {
  table: string;
  chain: string;
  rule: string;
}

const MAX = 10;

/** Candidates in one `iptables-save` text for drops toward `addresses` on `ports`. */
export function dropRules(text: string, ports: readonly number[], addresses: readonly string[]): RuleCandidate[] {
  const out: RuleCandidate[] = [];
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      table = line.slice(1);
      continue;
    }
    if (!line.startsWith('-A ') || !/ -j (DROP|REJECT)\b/.test(line)) continue;
    const portNamed = ports.some((p) => new RegExp(`--[ds]ports? (?:[0-9,:]*[,:])?${p}(?:[,:][0-9,:]*)?(?:\\s|$)`).test(line)) || /--[ds]port domain\b/.test(line);
    const addrNamed = addresses.some((a) => new RegExp(`(?:^|\\s)-[ds] ${a.replace(/[.]/g, '\\.')}(?:/(?:32|128))?(?:\\s|$)`).test(line));
    if (!portNamed && !addrNamed) continue;
    const chain = line.split(/\s+/)[1] ?? '';
    out.push({ table, chain, rule: line });
    if (out.length >= MAX) break;
  }
  return out;
}
