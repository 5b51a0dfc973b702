/** `k8sdiag svc`: kube-proxy's rules -> per-Service endpoint shares and findings. */
import { analyseDumps } from '../kubeproxy/analyse.js';
import type { ProxyMode, ServiceReport } from '../kubeproxy/analyse.js';
import { readRulesLive } from '../host/kubeproxy.js';
import { DumpParser, feedText, parseDumps } from '../kubeproxy/rules.js';
import type { ParsedDumps } from '../kubeproxy/rules.js';
import type { Unavailable } from '../tool.js';
import { InputError } from '../errors.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import { LIMITS, lineReader, streamText } from '../input.js';
import type { RunControl, Source } from '../input.js';
import type { Finding } from '../findings.js';
import { serviceOf, sortFindings } from '../findings.js';
import { deniedAdvice } from '../privilege.js';

export interface SvcInput extends RunControl {
  source: Source;
  /** NS/NAME[:PORT] to keep. */
  service?: string;
}

export interface SvcResult extends ResultHeader {
  command: 'svc';
  sources: string[];
  unavailable: Unavailable[];
  /** What the input contained: iptables-save, nftables (kube-proxy table), ipvsadm. */
  inputs: string[];
  /** kube-proxy mode(s) the rules show. */
  modes: ProxyMode[];
  services: ServiceReport[];
  stats: { rules: number; services: number };
  findings: Finding[];
  warnings: string[];
}

/** Findings a cut in the dump makes up: chains declared or jumped to before the cut, and defined after it. */
const CUT_SHORT_CODES: ReadonlySet<Finding['code']> = new Set(['MISSING_CHAIN', 'ORPHAN_CHAIN', 'EMPTY_ENDPOINT_CHAIN']);

function matchesFilter(s: ServiceReport, filter: string): boolean {
  const [nsName, port] = filter.split(':', 2);
  const full = `${s.namespace ?? ''}/${s.name ?? ''}`;
  if (nsName !== full && nsName !== s.id) return false;
  return port === undefined || port === s.portName || String(s.port) === port;
}

export async function runSvc(input: SvcInput): Promise<SvcResult> {
  const header = startHeader('svc');
  let dumps: ParsedDumps;
  let sources: string[];
  let unavailable: Unavailable[] = [];
  const fromInput = input.source.kind !== 'live';
  if (input.source.kind === 'file' || input.source.kind === 'stdin') {
    // Streamed a line at a time: only the model is kept, never the dump's text.
    const path = input.source.kind === 'file' ? input.source.path : '-';
    const parser = new DumpParser();
    const lines = lineReader((l) => parser.line(l));
    await streamText(path, (chunk) => {
      parser.check(chunk);
      lines.feed(chunk);
    }, LIMITS.svc);
    lines.end();
    dumps = parser.finish();
    sources = [path === '-' ? 'stdin' : path];
  } else if (input.source.kind === 'text') {
    dumps = parseDumps(input.source.text);
    sources = [input.source.origin];
  } else {
    input.onProgress?.('reading iptables-save, ip6tables-save, nft list ruleset and ipvsadm -Ln...');
    const live = await readRulesLive();
    sources = live.sources;
    unavailable = live.unavailable;
    if (live.parts.every((t) => t.trim() === '')) {
      const denied = unavailable.filter((u) => u.reason.includes('permission denied'));
      if (denied.length > 0 && denied.length === unavailable.length) {
        // Refused everywhere for one reason: said once, with what to do.
        throw new InputError(`could not read any rules on this machine: ${denied.map((u) => u.source).join(', ')}: ${deniedAdvice('iptables-save')}`, 'or pipe a dump instead: iptables-save | k8sdiag svc');
      }
      throw new InputError(`could not read any rules on this machine: ${unavailable.map((u) => `${u.source}: ${u.reason}`).join('; ')}`, 'pipe a dump instead: iptables-save | k8sdiag svc');
    }
    // One dump after another into one parser; each text let go once read, so the analysis never holds them.
    const parser = new DumpParser();
    for (let k = 0; k < live.parts.length; k++) {
      feedText(parser, live.parts[k]!);
      live.parts[k] = '';
    }
    dumps = parser.finish();
  }
  const analysis = analyseDumps(dumps);
  const warnings = [...dumps.warnings];
  if (!fromInput && analysis.modes.length === 0) {
    warnings.push('no kube-proxy rules found: this node runs no kube-proxy, or another network namespace');
  }
  if (analysis.modes.includes('nftables') && !analysis.modes.includes('iptables') && sources.some((s) => s.startsWith('iptables-save'))) {
    warnings.push('kube-proxy runs in nftables mode: iptables-save shows no Service rules here, and that is expected');
  }
  let services = analysis.services;
  let findings = analysis.findings;
  if (dumps.truncated !== null) {
    // A dump cut short lacks the chains after the cut: what is missing or unreferenced there says nothing of the node.
    const cut = findings.filter((f) => CUT_SHORT_CODES.has(f.code)).length;
    findings = findings.filter((f) => !CUT_SHORT_CODES.has(f.code));
    warnings.push(`the dump was cut short (${dumps.truncated}): the rules after the cut are missing, so missing, empty and orphan chains are not reported${cut > 0 ? ` (${cut} left out)` : ''}; read it whole`);
  }
  if (input.service !== undefined) {
    const f = input.service;
    services = services.filter((s) => matchesFilter(s, f));
    if (services.length === 0) throw new InputError(f.trim() === '' ? '--service needs a Service: NAMESPACE/NAME or NAMESPACE/NAME:PORT' : `no Service ${f} in the rules`, 'give NAMESPACE/NAME or NAMESPACE/NAME:PORT as the rules name it');
    const ids = new Set(services.map((s) => s.id));
    // Only what concerns the chosen Service: a finding whose Service is unknown or another is left out.
    findings = findings.filter((x) => {
      const id = serviceOf(x);
      return id !== undefined && ids.has(id);
    });
  }
  let rules = (dumps.iptables?.lines ?? 0) + (dumps.iptables6?.lines ?? 0);
  for (const kp of dumps.nft) rules += kp.chains.items;
  rules += dumps.ipvs?.reduce((n, s) => n + 1 + s.reals.length, 0) ?? 0;
  return {
    ...header.finish(),
    command: 'svc',
    sources,
    unavailable,
    inputs: dumps.kinds,
    modes: analysis.modes,
    services,
    stats: { rules, services: services.length },
    findings: sortFindings(findings),
    warnings,
  };
}
