/**
 * Live reading of kube-proxy's rules on this node: iptables-save, nft list
 * ruleset and ipvsadm -Ln, each where present, with what could not be read
 * and why.
 */
import pLimit from 'p-limit';
import { runTool } from '../tool.js';
import type { Unavailable } from '../tool.js';

export interface RulesSample {
  text: string;
  sources: string[];
  unavailable: Unavailable[];
}

export async function readRulesLive(commands: Array<[string, string[]]> = [
  ['iptables-save', []],
  ['ip6tables-save', []],
  ['nft', ['list', 'ruleset']],
  ['ipvsadm', ['-Ln']],
]): Promise<RulesSample> {
  const parts: string[] = [];
  const sources: string[] = [];
  const unavailable: Unavailable[] = [];
  // The dumps run two at a time (a large node's iptables-save is heavy), and are read in the order given.
  const limit = pLimit(2);
  const results = await Promise.all(commands.map(([cmd, args]) => limit(() => runTool(cmd, args, { timeoutMs: 60_000, maxBuffer: 1 << 30 }))));
  for (const [i, [cmd, args]] of commands.entries()) {
    const label = [cmd, ...args].join(' ');
    const r = results[i]!;
    if (r.failed !== undefined) unavailable.push({ source: label, reason: r.failed });
    else if (r.stdout.trim() === '') unavailable.push({ source: label, reason: 'printed nothing' });
    else {
      // iptables-nft also shows its tables in nft's output: keep only kube-proxy's own nft table
      // from `nft list ruleset` when iptables-save already answered, to count each rule once.
      const text = cmd === 'nft' && sources.some((s) => s.startsWith('iptables-save')) ? keepKubeProxyTable(r.stdout) : r.stdout;
      if (text.trim() !== '') {
        parts.push(text);
        sources.push(label);
      }
    }
  }
  return { text: parts.join('\n'), sources, unavailable };
}

/** Only the `table ip|ip6 kube-proxy { ... }` blocks of an nft ruleset. */
export function keepKubeProxyTable(ruleset: string): string {
  const out: string[] = [];
  let keep = false;
  let depth = 0;
  for (const line of ruleset.split('\n')) {
    const t = line.trim();
    if (depth === 0) keep = /^table (ip|ip6) kube-proxy \{$/.test(t);
    if (keep) out.push(line);
    for (const ch of t) {
      if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
    if (depth <= 0) {
      depth = 0;
      keep = false;
    }
  }
  return out.join('\n');
}
