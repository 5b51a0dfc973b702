import type { Finding } from '../findings.js';
import type { Expansion } from './expand.js';
import type { ResolvConf } from './parse.js';
import { NODELOCALDNS_IP, looksLikeClusterIp } from '../kubernetes.js';
import { finding } from '../findings.js';

/** kubelet's limits on a pod's search list (pkg/apis/core/validation). */
export const KUBELET_SEARCH_LIMITS = {
  legacy: { paths: 6, chars: 256 },
  expanded: { paths: 32, chars: 2048 },
} as const;

/** The remedy, with the name the user asked about (google.com when none was). */
const fixes = (name = 'google.com'): string =>
  `end external names with a dot ("${name.replace(/\.$/, '')}."), lower ndots for this pod with dnsConfig.options ` +
  '[{name: ndots, value: "1"}], and use fully qualified service names ("svc.ns.svc.cluster.local.")';

function searchChars(search: readonly string[]): number {
  return search.join(' ').length;
}

/** Findings about a resolv.conf (`file`: where it came from) and, with an expansion, about one name. */
export function resolvFindings(conf: ResolvConf, expansion?: Expansion, file = 'resolv.conf'): Finding[] {
  const findings: Finding[] = [];
  const { ndots } = conf.options;
  const perName = conf.libc === 'glibc' && conf.options.noAaaa ? 1 : 2;

  if (expansion !== undefined) {
    const { dots, trailingDot } = expansion;
    if (!trailingDot && dots > 0 && dots < ndots && conf.search.length > 0) {
      const names = expansion.candidates.filter((c) => c.sent).length;
      findings.push(finding({
        code: 'NDOTS_AMPLIFICATION',
        severity: 'warning',
        subject: { kind: 'name', name: expansion.name },
        message:
          `${expansion.name} has ${dots} dot${dots === 1 ? '' : 's'} (< ndots:${ndots}): ` +
          (expansion.answerIs === 'service'
            ? `a Service name, it answers at name ${expansion.answerIndex + 1} (${expansion.candidates[expansion.answerIndex]?.fqdn ?? ''}): ` +
              `${expansion.queriesToAnswer} queries, ${expansion.expectedNxdomain} of them expected NXDOMAIN before it`
            : `${names} name${names === 1 ? '' : 's'}, ${expansion.queries.length} queries` +
              (expansion.expectedNxdomain > 0 ? `, ${expansion.expectedNxdomain} of them expected NXDOMAIN before an answer` : '')),
        evidence: {
          name: expansion.name,
          dots,
          ndots,
          searchDomains: conf.search.length,
          names,
          queries: expansion.queries.length,
          expectedNxdomain: expansion.expectedNxdomain,
          queriesToAnswer: expansion.queriesToAnswer,
          answersAt: expansion.candidates[expansion.answerIndex]?.fqdn ?? null,
        },
        remedy: fixes(expansion.name),
      }));
    }
  } else if (ndots > 1 && conf.search.length > 0) {
    const worst = (conf.search.length + 1) * perName;
    findings.push(finding({
      code: 'NDOTS_AMPLIFICATION',
      severity: 'warning',
      subject: { kind: 'resolv-conf', file },
      message:
        `ndots:${ndots} with ${conf.search.length} search domains: an external name with fewer than ${ndots} dots ` +
        `costs ${conf.search.length + 1} names, ${worst} queries, ${worst - perName} of them expected NXDOMAIN`,
      evidence: { ndots, searchDomains: conf.search.length, queriesPerExternalLookup: worst },
      remedy: fixes(),
    }));
  }

  const paths = conf.search.length;
  const chars = searchChars(conf.search);
  const { legacy, expanded } = KUBELET_SEARCH_LIMITS;
  if (paths > expanded.paths || chars > expanded.chars) {
    findings.push(finding({
      code: 'SEARCH_LIMIT',
      severity: 'critical',
      subject: { kind: 'resolv-conf', file },
      message: `search list has ${paths} domains / ${chars} characters, over kubelet's limit of ${expanded.paths} / ${expanded.chars}`,
      evidence: { paths, chars, limitPaths: expanded.paths, limitChars: expanded.chars },
      remedy: 'shorten dnsConfig.searches or the node\'s search list; kubelet drops what is over the limit',
    }));
  } else if (paths > legacy.paths || chars > legacy.chars) {
    findings.push(finding({
      code: 'SEARCH_LIMIT',
      severity: 'warning',
      subject: { kind: 'resolv-conf', file },
      message:
        `search list has ${paths} domains / ${chars} characters, over the legacy limit of ${legacy.paths} / ${legacy.chars} ` +
        `(allowed only with kubelet's expanded DNS config, default since 1.28)`,
      evidence: { paths, chars, limitPaths: legacy.paths, limitChars: legacy.chars },
      remedy: 'on kubelets older than 1.28 (or with ExpandedDNSConfig off) shorten the search list; every extra domain also costs queries',
    }));
  }

  if (conf.ignoredNameservers.length > 0) {
    findings.push(finding({
      code: 'TOO_MANY_NAMESERVERS',
      severity: 'warning',
      subject: { kind: 'resolv-conf', file },
      message: `${conf.nameservers.length + conf.ignoredNameservers.length} nameservers: ${conf.libc} uses only the first 3, ignoring ${conf.ignoredNameservers.join(', ')}`,
      evidence: { used: conf.nameservers.join(' '), ignored: conf.ignoredNameservers.join(' ') },
      remedy: 'keep at most 3 nameserver lines (kubelet also warns "Nameserver limits exceeded")',
    }));
  }

  if (conf.nameservers.includes(NODELOCALDNS_IP)) {
    findings.push(finding({
      code: 'NODELOCALDNS',
      severity: 'info',
      subject: { kind: 'resolv-conf', file },
      message: `NodeLocalDNS in use (${NODELOCALDNS_IP}): queries reach a node-local cache without conntrack (NOTRACK)`,
      evidence: { nameserver: NODELOCALDNS_IP },
      remedy: '',
    }));
  } else if (conf.nameservers.some(looksLikeClusterIp)) {
    findings.push(finding({
      code: 'NO_NODELOCALDNS',
      severity: 'info',
      subject: { kind: 'resolv-conf', file },
      message: `NodeLocalDNS (${NODELOCALDNS_IP}) not in use: queries to ${conf.nameservers.filter(looksLikeClusterIp).join(', ')} (a Service IP, by its range) go through DNAT and conntrack`,
      evidence: { nameservers: conf.nameservers.join(' ') },
      remedy: 'NodeLocalDNS avoids the conntrack race and table pressure for DNS',
    }));
  }

  if (conf.libc === 'musl') {
    const ignored = conf.optionsIgnored.filter((o) => o.startsWith('single-request'));
    if (ignored.length > 0) {
      findings.push(finding({
        code: 'MUSL_IGNORES_OPTION',
        severity: 'info',
        subject: { kind: 'resolv-conf', file },
        message: `musl ignores ${ignored.map((o) => o.split(' ')[0]).join(', ')}: it always sends A and AAAA in parallel to every nameserver`,
        evidence: { options: ignored.join('; ') },
        remedy: 'for musl (Alpine) images, NodeLocalDNS or a trailing dot are the workarounds that apply',
      }));
    }
  } else if (conf.options.singleRequestReopen || conf.options.singleRequest) {
    findings.push(finding({
      code: 'SINGLE_REQUEST',
      severity: 'info',
      subject: { kind: 'resolv-conf', file },
      message: conf.options.singleRequestReopen
        ? 'single-request-reopen: glibc sends AAAA from a new socket after the A answer (works around the conntrack race)'
        : 'single-request: glibc sends A and AAAA one after the other from one socket (works around the conntrack race)',
      evidence: { option: conf.options.singleRequestReopen ? 'single-request-reopen' : 'single-request' },
      remedy: '',
    }));
  }
  const disabled = lookupsDisabled(conf);
  if (disabled !== undefined) {
    findings.push(finding({
      code: 'LOOKUPS_DISABLED',
      severity: 'critical',
      subject: { kind: 'resolv-conf', file },
      message: `options ${disabled.option}: ${disabled.why}`,
      evidence: { option: disabled.option, libc: conf.libc },
      remedy: `remove ${disabled.option} from the pod's dnsConfig options (the defaults are timeout:5 attempts:2)`,
    }));
  }
  return findings;
}

/**
 * An option that stops every lookup, as each libc reads it: glibc's send loop runs `attempts` times (none at 0: no query
 * at all, the lookup fails at once; timeout:0 is waited as 1 s); musl divides its timeout by attempts for the resend
 * interval (res_msend.c: a division by zero at 0) and sends only while less than the timeout has passed (none at 0).
 */
export function lookupsDisabled(conf: ResolvConf): { option: string; why: string } | undefined {
  if (conf.options.attempts === 0) {
    return conf.libc === 'musl'
      ? { option: 'attempts:0', why: 'musl divides its timeout by attempts to space its resends (res_msend.c): a division by zero at the first lookup' }
      : { option: 'attempts:0', why: 'glibc tries each nameserver attempts times: it sends no query at all, and every lookup fails at once' };
  }
  if (conf.libc === 'musl' && conf.options.timeout === 0) {
    return { option: 'timeout:0', why: 'musl sends while less than the timeout has passed: it sends no query at all, and every lookup fails at once' };
  }
  return undefined;
}
