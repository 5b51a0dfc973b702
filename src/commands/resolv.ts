/** `k8sdiag resolv`: resolv.conf -> the exact queries a resolver sends. */
import { hostname as osHostname } from 'node:os';
import type { Finding } from '../findings.js';
import { sortFindings } from '../findings.js';
import { expandName } from '../resolv/expand.js';
import type { Candidate, Expansion, Query } from '../resolv/expand.js';
import { resolvFindings } from '../resolv/findings.js';
import { parseResolvConf } from '../resolv/parse.js';
import { InputError } from '../errors.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import { loadResolvConf } from '../input.js';
import type { RunControl, Source } from '../input.js';
import type { Libc, ResolvConf, ResolvOptions } from '../resolv/parse.js';

export interface ResolvCommandInput extends RunControl {
  /** The resolv.conf: a file ("-": stdin), or text handed over. Live means /etc/resolv.conf. */
  source: Source;
  name?: string;
  libc: Libc;
  env?: { LOCALDOMAIN?: string | undefined; RES_OPTIONS?: string | undefined };
  hostname?: string;
}

export interface ResolvResult extends ResultHeader {
  command: 'resolv';
  file: string;
  libc: Libc;
  name: string | null;
  nameservers: string[];
  ignoredNameservers: string[];
  search: string[];
  searchSource: ResolvConf['searchSource'];
  options: ResolvOptions;
  optionsSet: string[];
  optionsIgnored: string[];
  /** Ordered FQDNs, each with a trailing dot. */
  candidates: Candidate[];
  queries: Query[];
  expansion: Omit<Expansion, 'candidates' | 'queries'> | null;
  findings: Finding[];
  warnings: string[];
}

export async function runResolv(input: ResolvCommandInput): Promise<ResolvResult> {
  const header = startHeader('resolv');
  const loaded = await loadResolvConf(input.source);
  // Nothing at all: most often a `kubectl exec ... cat` that failed, piped in. Never "no findings" on glibc's defaults.
  if (loaded.text.trim() === '') {
    throw new InputError(`${loaded.origin} is empty: no nameserver, search, domain or options line to read`, "give the pod's resolv.conf (kubectl exec POD -- cat /etc/resolv.conf); an empty file makes glibc use its defaults (nameserver 127.0.0.1, no search list)");
  }
  const conf = parseResolvConf(loaded.text, {
    libc: input.libc,
    env: input.env ?? {},
    hostname: input.hostname ?? osHostname(),
  });
  const expansion = input.name !== undefined ? expandName(input.name, conf) : undefined;
  let summary: ResolvResult['expansion'] = null;
  if (expansion) {
    const { candidates: _c, queries: _q, ...rest } = expansion;
    summary = rest;
  }
  return {
    ...header.finish(),
    command: 'resolv',
    file: loaded.origin,
    libc: conf.libc,
    name: input.name ?? null,
    nameservers: conf.nameservers,
    ignoredNameservers: conf.ignoredNameservers,
    search: conf.search,
    searchSource: conf.searchSource,
    options: conf.options,
    optionsSet: conf.optionsSet,
    optionsIgnored: conf.optionsIgnored,
    candidates: expansion?.candidates ?? [],
    queries: expansion?.queries ?? [],
    expansion: summary,
    findings: sortFindings(resolvFindings(conf, expansion, loaded.origin)),
    warnings: conf.warnings,
  };
}
