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
    const full = d === '' ? `${name}.` : `${name}.${d}.`;
    if (!fits(full)) {
      // res_nmkquery fails: h_errno NO_RECOVERY ends the search loop.
      out.push({ fqdn: full, reason: 'search', domain: raw, types, sent: false, note: 'longer than 253 characters: glibc cannot encode it and stops searching' });
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
    out.push({ fqdn: `${body}.${d.replace(/\.$/, '')}.`.replace(/\.\.$/, '.'), reason: 'search', domain: d, types, sent: true });
  }
  out.push({ fqdn: `${body}.`, reason: trailing ? 'absolute' : search.length > 0 ? 'as-is-last' : 'as-is-first', types, sent: true });
  return out;
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
  const answerIndex = candidates.findIndex((c) => c.sent && c.fqdn.toLowerCase() === absolute.toLowerCase());
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
    expectedNxdomain,
    sendMode: sendModeFor(conf),
  };
}
