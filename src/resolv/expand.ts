/**
 * Expand a name into the ordered list of names a libc resolver tries, each
 * with the DNS queries it sends for getaddrinfo(AF_UNSPEC).
 *
 * glibc: resolv/res_query.c __res_context_search. musl:
 * src/network/lookup_name.c name_from_dns_search.
 */
import { UserError } from '../errors.js';
import type { ResolvConf } from './parse.js';

export type QueryType = 'A' | 'AAAA';

export type CandidateReason =
  | 'absolute' // trailing dot: only this name
  | 'as-is-first' // dots >= ndots: tried before the search list
  | 'search' // name + search domain
  | 'as-is-last'; // tried after the search list

export interface Candidate {
  /** Fully qualified, with a trailing dot. */
  fqdn: string;
  reason: CandidateReason;
  /** The search domain used, for reason 'search'. */
  domain?: string;
  /** Queries sent for this name, in order. */
  types: QueryType[];
  /** False where the resolver would give up on this name before sending (too long). */
  sent: boolean;
  note?: string;
}

export interface Query {
  name: string;
  type: QueryType;
  /** Index of the candidate this query belongs to. */
  candidate: number;
}

export interface Expansion {
  name: string;
  libc: ResolvConf['libc'];
  dots: number;
  trailingDot: boolean;
  ndots: number;
  candidates: Candidate[];
  queries: Query[];
  /**
   * Index of the first candidate expected to answer if NAME exists only as
   * written (an external name); -1 when the resolver never tries it as written.
   */
  answerIndex: number;
  /** Why that candidate: the name as written, or the Service it names inside the cluster. */
  answerIs: 'as-written' | 'service';
  /** Queries sent up to and including the answering name (all of them when none is expected to answer). */
  queriesToAnswer: number;
  /** Queries expected to come back NXDOMAIN before that answer. */
  expectedNxdomain: number;
  /** How the resolver sends the two queries of one name. */
  sendMode: 'parallel' | 'parallel-to-all-nameservers' | 'single-request' | 'single-request-reopen' | 'A-only' | 'tcp';
}

const MAX_NAME = 253; // presentation length without the trailing dot

/** Validate a name as typed by a user; throws a UserError with what is wrong. */
export function checkName(name: string): void {
  if (name === '' || name === '.') throw new UserError(`"${name}" is not a host name`);
  const body = name.endsWith('.') ? name.slice(0, -1) : name;
  if (body.length > MAX_NAME) throw new UserError(`name is ${body.length} characters long; DNS allows at most ${MAX_NAME}`);
  for (const label of body.split('.')) {
    if (label === '') throw new UserError(`"${name}" has an empty label (two dots in a row, or a leading dot)`);
    if (label.length > 63) throw new UserError(`label "${label.slice(0, 20)}..." is ${label.length} characters; DNS allows at most 63`);
  }
  if (/[\s\x00-\x1f]/.test(name)) throw new UserError(`"${name}" contains blanks or control characters`);
}

function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

function typesFor(conf: ResolvConf): QueryType[] {
  if (conf.libc === 'glibc' && conf.options.noAaaa) return ['A'];
  return ['A', 'AAAA'];
}

function sendModeFor(conf: ResolvConf): Expansion['sendMode'] {
  if (conf.libc === 'musl') return 'parallel-to-all-nameservers';
  const o = conf.options;
  if (o.noAaaa) return 'A-only';
  if (o.useVc) return 'tcp';
  if (o.singleRequestReopen) return 'single-request-reopen';
  if (o.singleRequest) return 'single-request';
  return 'parallel';
}

/** No empty label once the one trailing dot is taken off (what ns_name_pton accepts). */
function encodable(name: string): boolean {
  const body = name.endsWith('.') ? name.slice(0, -1) : name;
  return body !== '' && !body.split('.').some((l) => l === '');
}

function fits(name: string): boolean {
  return name.replace(/\.$/, '').length <= MAX_NAME;
}

function glibcCandidates(name: string, conf: ResolvConf, dots: number, trailing: boolean): Candidate[] {
  const types = typesFor(conf);
  const out: Candidate[] = [];
  let triedAsIs = false;
  if (dots >= conf.options.ndots || trailing) {
    out.push({ fqdn: fqdn(name), reason: trailing ? 'absolute' : 'as-is-first', types, sent: true });
    if (trailing) return out;
    triedAsIs = true;
  }
  // RES_DEFNAMES and RES_DNSRCH are always on for getaddrinfo.
  let searched = false;
  let rootOnList = false;
  for (const raw of conf.search) {
    searched = true;
    let d = raw.startsWith('.') ? raw.slice(1) : raw;
    if (d === '') {
      rootOnList = true;
      d = '';
    }
    // res_querydomain joins "name.domain"; a domain written with its trailing dot
    // ("ns1.svc.cluster.local.") gives an absolute name, not "..".
    const full = d === '' ? `${name}.` : fqdn(`${name}.${d}`);
    if (!encodable(full) || !fits(full)) {
      // res_nmkquery fails: h_errno NO_RECOVERY ends the search loop.
      const why = fits(full) ? 'has an empty label: glibc cannot encode it and stops searching' : 'longer than 253 characters: glibc cannot encode it and stops searching';
      out.push({ fqdn: full, reason: 'search', domain: raw, types, sent: false, note: why });
      break;
    }
    out.push({ fqdn: full, reason: 'search', domain: raw, types, sent: true });
  }
  if ((dots > 0 || !searched || !conf.options.noTldQuery) && !(triedAsIs || rootOnList)) {
    out.push({ fqdn: fqdn(name), reason: 'as-is-last', types, sent: true });
  }
  return out;
}

function muslCandidates(name: string, conf: ResolvConf, dots: number, trailing: boolean): Candidate[] {
  const types = typesFor(conf);
  const body = trailing ? name.slice(0, -1) : name;
  const out: Candidate[] = [];
  const search = dots >= conf.options.ndots || trailing ? [] : conf.search;
  for (const d of search) {
    // musl skips (does not stop at) a domain that would overflow its 256-byte buffer.
    if (d.length >= 256 - body.length - 1) continue;
    // name_from_dns_search joins "name.domain"; __res_mkquery drops one trailing
    // dot and refuses a name that still ends in one or has an empty label: then
    // name_from_dns returns EAI_NONAME and the whole lookup ends there.
    const joined = `${body}.${d}`;
    const once = joined.endsWith('.') ? joined.slice(0, -1) : joined;
    if (once.endsWith('.') || once.split('.').some((l) => l === '')) {
      out.push({ fqdn: joined, reason: 'search', domain: d, types, sent: false, note: 'musl cannot encode it (an empty label): the lookup ends here with "name not found"' });
      return out;
    }
    out.push({ fqdn: `${once}.`, reason: 'search', domain: d, types, sent: true });
  }
  out.push({ fqdn: `${body}.`, reason: trailing ? 'absolute' : search.length > 0 ? 'as-is-last' : 'as-is-first', types, sent: true });
  return out;
}

/** Top-level domains that make "a.b" an external name rather than "service.namespace". */
const COMMON_TLDS = new Set([
  'com', 'net', 'org', 'io', 'dev', 'app', 'cloud', 'info', 'biz', 'co', 'ai', 'me', 'tv', 'xyz', 'gov', 'edu', 'mil', 'int', 'arpa',
  'us', 'uk', 'de', 'fr', 'nl', 'jp', 'cn', 'ru', 'eu', 'in', 'br', 'au', 'ca', 'ch', 'se', 'no', 'es', 'it', 'pl', 'kr', 'local', 'internal', 'localhost',
]);

/**
 * The in-cluster name a Service-shaped name resolves at, from the search list
 * kubelet writes (`<ns>.svc.<domain> svc.<domain> <domain>`): `svc` ->
 * svc.<ns>.svc.<domain>, `svc.ns` -> svc.ns.svc.<domain>, `svc.ns.svc` ->
 * svc.ns.svc.<domain>. Undefined for other names or search lists.
 */
export function serviceFqdn(name: string, search: readonly string[]): string | undefined {
  if (name.endsWith('.')) return undefined;
  const svcDomain = search.map((d) => d.replace(/\.$/, '')).find((d) => /^svc\./.test(d));
  if (svcDomain === undefined) return undefined;
  const domain = svcDomain.slice(4);
  const labels = name.split('.');
  if (labels.length === 1) {
    const nsDomain = search.map((d) => d.replace(/\.$/, '')).find((d) => d.endsWith(`.svc.${domain}`) && d.split('.').length === domain.split('.').length + 2);
    return nsDomain === undefined ? undefined : `${name}.${nsDomain}.`;
  }
  // "kubernetes.default" is a Service in a namespace; "google.com" is not.
  if (labels.length === 2 && !COMMON_TLDS.has((labels[1] ?? '').toLowerCase())) return `${name}.svc.${domain}.`;
  if (labels.length === 3 && labels[2] === 'svc') return `${name}.${domain}.`;
  return undefined;
}

export function expandName(name: string, conf: ResolvConf): Expansion {
  checkName(name);
  const dots = [...name].filter((c) => c === '.').length;
  const trailingDot = name.endsWith('.');
  const candidates = conf.libc === 'musl' ? muslCandidates(name, conf, dots, trailingDot) : glibcCandidates(name, conf, dots, trailingDot);
  const queries: Query[] = [];
  candidates.forEach((c, i) => {
    if (!c.sent) return;
    for (const type of c.types) queries.push({ name: c.fqdn, type, candidate: i });
  });
  const absolute = fqdn(name);
  // The candidate expected to answer: for a name shaped like a Service name
  // (svc, svc.ns, svc.ns.svc) the one under the cluster's svc domain; else the name as written.
  const service = serviceFqdn(name, conf.search);
  const want = (service ?? absolute).toLowerCase();
  let answerIndex = candidates.findIndex((c) => c.sent && c.fqdn.toLowerCase() === want);
  const answerIs: Expansion['answerIs'] = answerIndex >= 0 && service !== undefined ? 'service' : 'as-written';
  if (answerIndex < 0) answerIndex = candidates.findIndex((c) => c.sent && c.fqdn.toLowerCase() === absolute.toLowerCase());
  const expectedNxdomain =
    answerIndex < 0
      ? queries.length
      : candidates.slice(0, answerIndex).reduce((n, c) => n + (c.sent ? c.types.length : 0), 0);
  return {
    name,
    libc: conf.libc,
    dots,
    trailingDot,
    ndots: conf.options.ndots,
    candidates,
    queries,
    answerIndex,
    answerIs,
    queriesToAnswer: answerIndex < 0 ? queries.length : expectedNxdomain + (candidates[answerIndex]?.types.length ?? 0),
    expectedNxdomain,
    sendMode: sendModeFor(conf),
  };
}
