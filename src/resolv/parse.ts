/**
 * resolv.conf parsing with the exact semantics of the libc that will read it.
 *
 * glibc (resolv/res_init.c, 2.26+): comments only where a line starts with
 * '#' or ';'; a keyword must be followed by a space or tab; `domain` and
 * `search` each replace the search list (the last wins); `options` accumulate
 * over lines and are matched by prefix; ndots/timeout/attempts capped at
 * 15/30/5; only the first 3 nameservers are used; LOCALDOMAIN replaces the
 * file's search list, RES_OPTIONS is applied after the file.
 *
 * musl (src/network/resolvconf.c): lines longer than 255 bytes are ignored
 * whole; only ndots/attempts/timeout are read from `options` (caps 15/10/60);
 * `domain` and `search` replace the list; at most 3 nameservers; no
 * environment overrides.
 */
import { InputError } from '../errors.js';
import { looksBinary, printable } from '../text.js';

export type Libc = 'glibc' | 'musl';

export interface ResolvOptions {
  ndots: number;
  timeout: number;
  attempts: number;
  rotate: boolean;
  edns0: boolean;
  singleRequest: boolean;
  singleRequestReopen: boolean;
  noTldQuery: boolean;
  noReload: boolean;
  useVc: boolean;
  trustAd: boolean;
  noAaaa: boolean;
  inet6: boolean;
}

export type SearchSource = 'search' | 'domain' | 'LOCALDOMAIN' | 'hostname' | 'none';

export interface ResolvConf {
  libc: Libc;
  /** The nameservers the resolver uses, in order (at most 3). */
  nameservers: string[];
  /** Nameserver lines beyond the third: read, never used. */
  ignoredNameservers: string[];
  search: string[];
  searchSource: SearchSource;
  options: ResolvOptions;
  /** Options as recognised, in order, e.g. ["ndots:5", "single-request-reopen"]. */
  optionsSet: string[];
  /** Options that the libc reads but that have no effect there. */
  optionsIgnored: string[];
  sortlist: string[];
  warnings: string[];
}

export interface ParseContext {
  libc?: Libc;
  /** Environment variables the libc would read (glibc: LOCALDOMAIN, RES_OPTIONS). */
  env?: { LOCALDOMAIN?: string | undefined; RES_OPTIONS?: string | undefined };
  /** Host name, for glibc's default search domain when the file sets none. */
  hostname?: string;
}

export const GLIBC_DEFAULTS: Readonly<ResolvOptions> = {
  ndots: 1,
  timeout: 5,
  attempts: 2,
  rotate: false,
  edns0: false,
  singleRequest: false,
  singleRequestReopen: false,
  noTldQuery: false,
  noReload: false,
  useVc: false,
  trustAd: false,
  noAaaa: false,
  inet6: false,
};

const GLIBC_CAPS = { ndots: 15, timeout: 30, attempts: 5 } as const;
const MUSL_CAPS = { ndots: 15, timeout: 60, attempts: 10 } as const;
const MAXNS = 3;

type FlagName = Exclude<keyof ResolvOptions, 'ndots' | 'timeout' | 'attempts'>;

/** glibc's table, in glibc's order: the first prefix that matches wins. */
const GLIBC_FLAGS: ReadonlyArray<readonly [string, FlagName]> = [
  ['inet6', 'inet6'],
  ['rotate', 'rotate'],
  ['edns0', 'edns0'],
  ['single-request-reopen', 'singleRequestReopen'],
  ['single-request', 'singleRequest'],
  ['no_tld_query', 'noTldQuery'],
  ['no-tld-query', 'noTldQuery'],
  ['no-reload', 'noReload'],
  ['use-vc', 'useVc'],
  ['trust-ad', 'trustAd'],
  ['no-aaaa', 'noAaaa'],
];

const NUMERIC = ['ndots', 'timeout', 'attempts'] as const;

/**
 * glibc's atoi: (int) strtol(s, NULL, 10). Optional spaces and sign, then leading digits (0 when none); strtol
 * saturates at the 64-bit long's range, and the cast to int keeps the low 32 bits (4294967297 is 1, and
 * 99999999999999999999 saturates to LONG_MAX, whose low 32 bits are -1).
 */
function atoi(s: string): number {
  const m = /^[ \t]*([+-]?\d+)/.exec(s);
  if (!m || m[1] === undefined) return 0;
  let v = BigInt(m[1]);
  const max = (1n << 63n) - 1n;
  if (v > max) v = max;
  if (v < -max - 1n) v = -max - 1n;
  return Number(BigInt.asIntN(32, v));
}

function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function isIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return false;
  const dbl = s.split('::');
  if (dbl.length > 2) return false;
  const groups = s.split(':').filter((g) => g !== '');
  const last = groups[groups.length - 1];
  const v4tail = last !== undefined && last.includes('.');
  if (v4tail && !isIPv4(last)) return false;
  const n = groups.length + (v4tail ? 1 : 0);
  if (groups.some((g) => !g.includes('.') && !/^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  return dbl.length === 2 ? n < 8 : n === 8;
}

/** keyword followed by a space or tab (glibc's MATCH, musl's isspace). */
function keyword(line: string, word: string): string | undefined {
  if (!line.startsWith(word)) return undefined;
  const next = line[word.length];
  if (next === ' ' || next === '\t') return line.slice(word.length + 1);
  return undefined;
}

function splitBlanks(s: string): string[] {
  return s.split(/[ \t]+/).filter((w) => w !== '');
}

export function defaultOptions(): ResolvOptions {
  return { ...GLIBC_DEFAULTS };
}

function glibcSetOptions(text: string, conf: ResolvConf, where: string): void {
  for (const token of splitBlanks(text)) {
    const numeric = NUMERIC.find((n) => token.startsWith(`${n}:`));
    if (numeric !== undefined) {
      const raw = token.slice(numeric.length + 1);
      const read = atoi(raw);
      let value = read;
      const cap = GLIBC_CAPS[numeric];
      if (!/^\d+$/.test(raw) || String(read) !== raw.replace(/^0+(?=\d)/, '')) conf.warnings.push(`${where}: option "${token}": glibc reads the value as ${read}`);
      if (value > cap) {
        conf.warnings.push(`${where}: option "${token}" is capped at ${numeric}:${cap} by glibc`);
        value = cap;
      }
      if (value < 0) {
        // Kept in an unsigned field and copied into res_state: ndots into 4 bits (-1 is 15), retry and retrans into ints
        // (negative: no try at all, or the 1 s floor of a try, as at 0).
        value = numeric === 'ndots' ? value & 15 : 0;
        conf.warnings.push(`${where}: option "${token}" is negative; glibc reads it as ${numeric}:${value}`);
      }
      conf.options[numeric] = value;
      conf.optionsSet.push(`${numeric}:${value}`);
      continue;
    }
    const flag = GLIBC_FLAGS.find(([name]) => token.startsWith(name));
    if (flag === undefined) {
      conf.warnings.push(`${where}: unknown option "${token}" (glibc ignores it)`);
      continue;
    }
    const [name, field] = flag;
    if (token !== name) conf.warnings.push(`${where}: option "${token}" is read by glibc as "${name}" (prefix match)`);
    conf.options[field] = true;
    conf.optionsSet.push(name);
    if (name === 'inet6') conf.optionsIgnored.push('inet6 (deprecated since glibc 2.25, no effect)');
  }
}

function muslSetOptions(line: string, conf: ResolvConf, where: string): void {
  // musl looks for each numeric option anywhere on the line with strstr.
  for (const name of NUMERIC) {
    const at = line.indexOf(`${name}:`);
    if (at < 0) continue;
    const rest = line.slice(at + name.length + 1);
    const m = /^\d+/.exec(rest);
    if (!m) {
      conf.warnings.push(`${where}: option "${name}:" has no number; musl ignores it`);
      continue;
    }
    const cap = MUSL_CAPS[name];
    let value = Number.parseInt(m[0], 10);
    const after = rest.slice(m[0].length);
    if (after !== '' && !/^[ \t]/.test(after)) {
      // strtoul stops at the first non-digit: "timeout:0.5" is timeout:0.
      conf.warnings.push(`${where}: option "${name}:${m[0]}${after.split(/[ \t]/)[0] ?? ''}": musl reads the whole number before "${after[0] ?? ''}", ${name}:${value}`);
    }
    if (value > cap) {
      conf.warnings.push(`${where}: option "${name}:${m[0]}" is capped at ${name}:${cap} by musl`);
      value = cap;
    }
    conf.options[name] = value;
    conf.optionsSet.push(`${name}:${value}`);
  }
  for (const token of splitBlanks(line.slice('options'.length))) {
    if (NUMERIC.some((n) => token.startsWith(`${n}:`))) continue;
    const flag = GLIBC_FLAGS.find(([name]) => token === name);
    if (flag) conf.optionsIgnored.push(`${flag[0]} (glibc only: musl ignores it)`);
    else conf.warnings.push(`${where}: unknown option "${token}" (musl ignores it)`);
  }
}

function emptyConf(libc: Libc): ResolvConf {
  return {
    libc,
    nameservers: [],
    ignoredNameservers: [],
    search: [],
    searchSource: 'none',
    options: defaultOptions(),
    optionsSet: [],
    optionsIgnored: [],
    sortlist: [],
    warnings: [],
  };
}

function addNameserver(conf: ResolvConf, addr: string): void {
  if (conf.nameservers.length < MAXNS) conf.nameservers.push(addr);
  else conf.ignoredNameservers.push(addr);
}

function parseGlibc(text: string, ctx: ParseContext): ResolvConf {
  const conf = emptyConf('glibc');
  const localdomain = ctx.env?.LOCALDOMAIN;
  const haveEnv = localdomain !== undefined;
  if (haveEnv) {
    conf.search = splitBlanks(localdomain.split('\n')[0] ?? '');
    conf.searchSource = 'LOCALDOMAIN';
  }
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line.startsWith('#') || line.startsWith(';')) return;
    if (line.includes('\r')) conf.warnings.push(`${where}: carriage return (CRLF file): glibc keeps it as part of the last word`);
    let rest: string | undefined;
    if ((rest = keyword(line, 'domain')) !== undefined) {
      if (haveEnv) return void conf.warnings.push(`${where}: "domain" ignored: LOCALDOMAIN is set`);
      const word = splitBlanks(rest)[0];
      if (word === undefined) return;
      conf.search = [word];
      conf.searchSource = 'domain';
      return;
    }
    if ((rest = keyword(line, 'search')) !== undefined) {
      if (haveEnv) return void conf.warnings.push(`${where}: "search" ignored: LOCALDOMAIN is set`);
      const words = splitBlanks(rest);
      if (words.length === 0) return;
      conf.search = words;
      conf.searchSource = 'search';
      return;
    }
    if ((rest = keyword(line, 'nameserver')) !== undefined) {
      const word = splitBlanks(rest)[0] ?? '';
      // inet_aton first, then inet_pton(AF_INET6) with an optional %scope.
      const addr = word.split('%')[0] ?? '';
      if (isIPv4(word) || isIPv6(addr)) addNameserver(conf, word);
      else conf.warnings.push(`${where}: nameserver "${word}" is not an IP address; glibc ignores the line`);
      return;
    }
    if ((rest = keyword(line, 'sortlist')) !== undefined) {
      conf.sortlist.push(...splitBlanks(rest));
      return;
    }
    if ((rest = keyword(line, 'options')) !== undefined) {
      glibcSetOptions(rest, conf, where);
      return;
    }
    const trimmed = line.trim();
    if (trimmed === '') return;
    const first = splitBlanks(trimmed)[0] ?? trimmed;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      conf.warnings.push(`${where}: leading blank: glibc ignores the line "${trimmed}"`);
    } else if (trimmed.startsWith('#') || trimmed.startsWith(';')) {
      conf.warnings.push(`${where}: comment not at the start of the line: glibc ignores the line`);
    } else {
      conf.warnings.push(`${where}: unknown keyword "${first}": glibc ignores the line`);
    }
  });
  if (conf.search.length === 0 && ctx.hostname !== undefined) {
    const dot = ctx.hostname.indexOf('.');
    if (dot >= 0 && dot < ctx.hostname.length - 1) {
      conf.search = [ctx.hostname.slice(dot + 1)];
      conf.searchSource = 'hostname';
    }
  }
  if (ctx.env?.RES_OPTIONS !== undefined) glibcSetOptions(ctx.env.RES_OPTIONS, conf, 'RES_OPTIONS');
  if (conf.nameservers.length === 0) {
    conf.nameservers.push('127.0.0.1');
    conf.warnings.push('no usable nameserver line: glibc uses 127.0.0.1');
  }
  if (conf.options.singleRequest && conf.options.singleRequestReopen) {
    conf.warnings.push('both single-request and single-request-reopen are set: glibc uses single-request-reopen');
  }
  return conf;
}

function parseMusl(text: string, ctx: ParseContext): ResolvConf {
  const conf = emptyConf('musl');
  if (ctx.env?.LOCALDOMAIN !== undefined) conf.warnings.push('LOCALDOMAIN is set: musl ignores it');
  if (ctx.env?.RES_OPTIONS !== undefined) conf.warnings.push('RES_OPTIONS is set: musl ignores it');
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`;
    // fgets into a 256-byte buffer: a line of 255 bytes or more does not fit
    // with its newline, and musl skips it whole rather than misread it.
    const bytes = Buffer.byteLength(line);
    if (bytes >= 255) {
      conf.warnings.push(`${where}: ${bytes} bytes: musl ignores lines of 255 bytes or more`);
      return;
    }
    let rest: string | undefined;
    if (keyword(line, 'options') !== undefined) {
      muslSetOptions(line, conf, where);
      return;
    }
    if ((rest = keyword(line, 'nameserver')) !== undefined) {
      const word = splitBlanks(rest.replace(/\r/g, ' '))[0] ?? '';
      const addr = word.split('%')[0] ?? '';
      if (conf.nameservers.length >= MAXNS) {
        conf.ignoredNameservers.push(word);
        return;
      }
      if (isIPv4(word) || isIPv6(addr)) addNameserver(conf, word);
      else conf.warnings.push(`${where}: nameserver "${word}" is not an IP address; musl ignores the line`);
      return;
    }
    const d = keyword(line, 'domain');
    const s = keyword(line, 'search');
    rest = d ?? s;
    if (rest !== undefined) {
      conf.search = splitBlanks(rest.replace(/\r/g, ' '));
      conf.searchSource = d !== undefined ? 'domain' : 'search';
      return;
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const first = splitBlanks(trimmed)[0] ?? trimmed;
    if (first === 'sortlist') conf.warnings.push(`${where}: sortlist: musl ignores it`);
    else conf.warnings.push(`${where}: unknown keyword "${first}": musl ignores the line`);
  });
  if (conf.nameservers.length === 0) {
    conf.nameservers.push('127.0.0.1');
    conf.warnings.push('no usable nameserver line: musl uses 127.0.0.1');
  }
  return conf;
}

/** At most this many warnings are kept; the rest are counted in one closing line. */
export const MAX_WARNINGS = 20;
const RESOLV_LINE = /^(?:[ \t]*(?:[#;]|$)|(?:nameserver|search|domain|options|sortlist)(?:[ \t]|$))/;

export function parseResolvConf(text: string, ctx: ParseContext = {}): ResolvConf {
  if (looksBinary(text)) throw new InputError('binary data: not a resolv.conf', 'give the pod\'s /etc/resolv.conf (kubectl exec POD -- cat /etc/resolv.conf)');
  const lines = text.split('\n');
  // The newline that ends the last line does not start another.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  if (text.trim() !== '' && !lines.some((l) => RESOLV_LINE.test(l) && l.trim() !== '' && !/^[ \t]*[#;]/.test(l))) {
    throw new InputError(`not a resolv.conf: none of its ${lines.length} lines is a nameserver, search, domain, options or sortlist line`);
  }
  const conf = (ctx.libc ?? 'glibc') === 'musl' ? parseMusl(text, ctx) : parseGlibc(text, ctx);
  const all = conf.warnings.map((w) => printable(w));
  conf.warnings = all.length > MAX_WARNINGS ? [...all.slice(0, MAX_WARNINGS), `... and ${all.length - MAX_WARNINGS} more warnings`] : all;
  return conf;
}
