/**
 * Live reading of kube-proxy's rules on this node: iptables-save, nft list
 * ruleset and ipvsadm -Ln, each where present, with what could not be read
 * and why.
 */
import pLimit from 'p-limit';
import { LIMITS } from '../input.js';
import { runTool } from '../tool.js';
import type { Unavailable } from '../tool.js';

export interface RulesSample {
  /** Each dump's text, in the order read: parsed one after another, never joined into a copy of them all. */
  parts: string[];
  sources: string[];
  unavailable: Unavailable[];
}

/**
 * The iptables dumps of one family: both backends where the tools exist (a node
 * may run kube-proxy on either, as kube-proxy's iptables-wrapper decides), the
 * plain tool otherwise. The dump that holds KUBE- chains is kept; with none,
 * the first that printed anything.
 */
const FAMILIES: Array<{ plain: string; backends: string[] }> = [
  { plain: 'iptables-save', backends: ['iptables-nft-save', 'iptables-legacy-save'] },
  { plain: 'ip6tables-save', backends: ['ip6tables-nft-save', 'ip6tables-legacy-save'] },
];

export async function readRulesLive(): Promise<RulesSample> {
  const parts: string[] = [];
  const sources: string[] = [];
  const unavailable: Unavailable[] = [];
  // The dumps run one at a time, each read up to what is left of the input cap (LIMITS.svc, as for a dump piped in):
  // a large node's dumps are heavy, and two held at once were read with 1 GiB each.
  const limit = pLimit(1);
  let left = LIMITS.svc;
  const run = (cmd: string, args: string[] = []) => limit(() => runTool(cmd, args, { timeoutMs: 60_000, maxBuffer: Math.max(1, left) }));
  const keep = (text: string): void => {
    left -= Buffer.byteLength(text);
  };
  for (const fam of FAMILIES) {
    const tried = await Promise.all(fam.backends.map(async (cmd) => ({ cmd, r: await run(cmd) })));
    let usable = tried.filter((t) => t.r.failed === undefined && t.r.stdout.trim() !== '');
    if (tried.every((t) => t.r.failed !== undefined && /is not installed/.test(t.r.failed))) {
      const r = await run(fam.plain);
      usable = r.failed === undefined && r.stdout.trim() !== '' ? [{ cmd: fam.plain, r }] : [];
      if (r.failed !== undefined) unavailable.push({ source: fam.plain, reason: r.failed });
    } else {
      for (const t of tried) if (t.r.failed !== undefined && !/is not installed/.test(t.r.failed)) unavailable.push({ source: t.cmd, reason: t.r.failed });
    }
    const withRules = usable.filter((t) => /^:KUBE-|-A KUBE-/m.test(t.r.stdout));
    const chosen = withRules.length > 0 ? withRules : usable.slice(0, 1);
    for (const t of chosen) {
      keep(t.r.stdout);
      parts.push(t.r.stdout);
      sources.push(withRules.length > 0 && tried.length > 1 && t.cmd !== fam.plain ? `${t.cmd} (the backend with kube-proxy's rules)` : t.cmd);
    }
    if (usable.length === 0 && !unavailable.some((u) => u.source.startsWith(fam.plain.replace('-save', '')))) unavailable.push({ source: fam.plain, reason: 'printed nothing' });
  }
  const nft = await run('nft', ['list', 'ruleset']);
  if (nft.failed === undefined) keep(nft.stdout);
  const ipvs = await run('ipvsadm', ['-Ln']);
  if (nft.failed !== undefined) unavailable.push({ source: 'nft list ruleset', reason: nft.failed });
  else {
    // iptables-nft also shows its tables in nft's output: keep only kube-proxy's own nft table
    // when an iptables dump was read, to count each rule once.
    const text = sources.some((x) => /^ip6?tables/.test(x)) ? keepKubeProxyTable(nft.stdout) : nft.stdout;
    if (text.trim() !== '') {
      parts.push(text);
      sources.push('nft list ruleset');
    } else if (nft.stdout.trim() === '') unavailable.push({ source: 'nft list ruleset', reason: 'printed nothing' });
  }
  if (ipvs.failed !== undefined) unavailable.push({ source: 'ipvsadm -Ln', reason: ipvs.failed });
  else if (ipvs.stdout.trim() !== '') {
    parts.push(ipvs.stdout);
    sources.push('ipvsadm -Ln');
  }
  return { parts, sources, unavailable };
}

/**
 * Only the `table ip|ip6 kube-proxy { ... }` blocks of an nft ruleset. Lines found with indexOf and the blocks cut out
 * as slices: no array of every line, no copy line by line.
 */
export function keepKubeProxyTable(ruleset: string): string {
  const blocks: string[] = [];
  let depth = 0;
  let keepFrom = -1;
  for (let at = 0; at < ruleset.length; ) {
    let nl = ruleset.indexOf('\n', at);
    if (nl < 0) nl = ruleset.length;
    const line = ruleset.slice(at, nl);
    const t = line.trim();
    if (depth === 0 && /^table (ip|ip6) kube-proxy \{$/.test(t)) keepFrom = at;
    for (let k = 0; k < t.length; k++) {
      const ch = t.charCodeAt(k);
      if (ch === 123 /* { */) depth++;
      else if (ch === 125 /* } */) depth--;
    }
    if (depth <= 0) {
      depth = 0;
      if (keepFrom >= 0) blocks.push(ruleset.slice(keepFrom, nl));
      keepFrom = -1;
    }
    at = nl + 1;
  }
  if (keepFrom >= 0) blocks.push(ruleset.slice(keepFrom));
  return blocks.join('\n');
}
