import { describe, expect, it } from 'vitest';
import { expandName } from '../../src/resolv/expand.js';
import { resolvFindings } from '../../src/resolv/findings.js';
import { parseResolvConf } from '../../src/resolv/parse.js';
import type { ParseContext } from '../../src/resolv/parse.js';
import { readFixture, run } from '../helpers/run.js';

const names = (text: string, name: string, ctx: ParseContext = {}): string[] =>
  expandName(name, parseResolvConf(text, ctx)).candidates.map((c) => c.fqdn);

describe('resolv.conf parsing (glibc)', () => {
  it('reads the kubelet ClusterFirst file', () => {
    const conf = parseResolvConf(readFixture('resolv/kubelet-clusterfirst.conf'));
    expect(conf.nameservers).toEqual(['10.96.0.10']);
    expect(conf.search).toEqual(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
    expect(conf.options.ndots).toBe(5);
    expect(conf.warnings).toEqual([]);
  });

  it('reads Ubuntu systemd-resolved stub file: comments, edns0, trust-ad', () => {
    const conf = parseResolvConf(readFixture('resolv/ubuntu-systemd-resolved.conf'));
    expect(conf.nameservers).toEqual(['127.0.0.53']);
    expect(conf.search).toEqual(['ec2.internal']);
    expect(conf.options.edns0).toBe(true);
    expect(conf.options.trustAd).toBe(true);
    expect(conf.optionsSet).toEqual(['edns0', 'trust-ad']);
    expect(conf.warnings).toEqual([]);
  });

  it('treats # and ; as comments only at the start of a line', () => {
    const conf = parseResolvConf('  # indented comment\nnameserver 10.0.0.1 # trailing words are ignored\n;nameserver 10.0.0.9\n');
    expect(conf.nameservers).toEqual(['10.0.0.1']);
    expect(conf.warnings).toEqual(['line 1: leading blank: glibc ignores the line "# indented comment"']);
  });

  it('lets the last of domain and search win, each replacing the list', () => {
    expect(parseResolvConf('search a.com b.com\ndomain c.com\n').search).toEqual(['c.com']);
    expect(parseResolvConf('domain c.com\nsearch a.com\tb.com\n').search).toEqual(['a.com', 'b.com']);
    expect(parseResolvConf('domain c.com extra\n').search).toEqual(['c.com']);
  });

  it('accumulates options over lines and caps ndots/timeout/attempts at 15/30/5', () => {
    const conf = parseResolvConf('options ndots:20 rotate\noptions timeout:99\toptions attempts:9 single-request-reopen\n');
    expect(conf.options).toMatchObject({ ndots: 15, timeout: 30, attempts: 5, rotate: true, singleRequestReopen: true });
    expect(conf.warnings.filter((w) => w.includes('capped'))).toHaveLength(3);
  });

  it('recognises every glibc option, warns on unknown ones, matches by prefix like glibc', () => {
    const conf = parseResolvConf(
      'options rotate edns0 single-request single-request-reopen no-tld-query no_tld_query no-reload use-vc trust-ad no-aaaa inet6 bogus-opt rotatex\n',
    );
    expect(conf.options).toMatchObject({
      rotate: true, edns0: true, singleRequest: true, singleRequestReopen: true, noTldQuery: true,
      noReload: true, useVc: true, trustAd: true, noAaaa: true, inet6: true,
    });
    expect(conf.warnings).toContain('line 1: unknown option "bogus-opt" (glibc ignores it)');
    expect(conf.warnings).toContain('line 1: option "rotatex" is read by glibc as "rotate" (prefix match)');
    expect(conf.optionsIgnored).toContain('inet6 (deprecated since glibc 2.25, no effect)');
  });

  it('uses only the first three nameservers and accepts IPv6 with a scope', () => {
    const conf = parseResolvConf(readFixture('resolv/too-many.conf'));
    expect(conf.nameservers).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect(conf.ignoredNameservers).toEqual(['10.0.0.5']);
    expect(parseResolvConf('nameserver fe80::1%eth0\nnameserver ::1\nnameserver bogus\n').nameservers).toEqual(['fe80::1%eth0', '::1']);
  });

  it('falls back to 127.0.0.1 and the host name\'s domain like glibc', () => {
    const conf = parseResolvConf('', { hostname: 'node-1.corp.example.com' });
    expect(conf.nameservers).toEqual(['127.0.0.1']);
    expect(conf.search).toEqual(['corp.example.com']);
    expect(conf.searchSource).toBe('hostname');
  });

  it('honours LOCALDOMAIN (replacing search/domain) and RES_OPTIONS (after the file)', () => {
    const conf = parseResolvConf('search a.com\noptions ndots:5\n', { env: { LOCALDOMAIN: 'x.org  y.org', RES_OPTIONS: 'ndots:2 attempts:1' } });
    expect(conf.search).toEqual(['x.org', 'y.org']);
    expect(conf.searchSource).toBe('LOCALDOMAIN');
    expect(conf.options.ndots).toBe(2);
    expect(conf.options.attempts).toBe(1);
  });

  it('needs a blank after the keyword and warns about unknown keywords', () => {
    const conf = parseResolvConf('nameserver:10.0.0.1\nsearchfoo.com\nnameserver 10.0.0.2\n');
    expect(conf.nameservers).toEqual(['10.0.0.2']);
    expect(conf.warnings).toEqual(['line 1: unknown keyword "nameserver:10.0.0.1": glibc ignores the line', 'line 2: unknown keyword "searchfoo.com": glibc ignores the line']);
  });
});

describe('candidate expansion (glibc)', () => {
  const k8s = readFixture('resolv/kubelet-eks.conf');

  it('expands google.com in a ClusterFirst pod: 5 names, 10 queries, 8 NXDOMAIN', () => {
    const e = expandName('google.com', parseResolvConf(k8s));
    expect(e.candidates.map((c) => c.fqdn)).toEqual([
      'google.com.kube-system.svc.cluster.local.',
      'google.com.svc.cluster.local.',
      'google.com.cluster.local.',
      'google.com.us-west-2.compute.internal.',
      'google.com.',
    ]);
    expect(e.queries).toHaveLength(10);
    expect(e.queries.slice(0, 2)).toEqual([
      { name: 'google.com.kube-system.svc.cluster.local.', type: 'A', candidate: 0 },
      { name: 'google.com.kube-system.svc.cluster.local.', type: 'AAAA', candidate: 0 },
    ]);
    expect(e.expectedNxdomain).toBe(8);
    expect(e.answerIndex).toBe(4);
  });

  it('a trailing dot means exactly one name', () => {
    expect(names(k8s, 'google.com.')).toEqual(['google.com.']);
  });

  it('dots >= ndots: as-is first, then the search list, not as-is again', () => {
    expect(names('search a.com b.com\noptions ndots:2\n', 'x.y.z')).toEqual(['x.y.z.', 'x.y.z.a.com.', 'x.y.z.b.com.']);
  });

  it('no-tld-query skips the as-is query for a single-label name only', () => {
    expect(names('search a.com\noptions no-tld-query\n', 'host')).toEqual(['host.a.com.']);
    expect(names('search a.com\n', 'host')).toEqual(['host.a.com.', 'host.']);
    expect(names('search a.com\noptions no-tld-query ndots:3\n', 'x.y')).toEqual(['x.y.a.com.', 'x.y.']);
  });

  it('a "." search entry queries the name as root in place, and not again at the end', () => {
    expect(names('search a.com . b.com\n', 'host')).toEqual(['host.a.com.', 'host.', 'host.b.com.']);
    expect(names('search .a.com\n', 'host')).toEqual(['host.a.com.', 'host.']);
  });

  it('no-aaaa sends only A', () => {
    const e = expandName('google.com', parseResolvConf(`${k8s}options no-aaaa\n`));
    expect(e.queries.every((q) => q.type === 'A')).toBe(true);
    expect(e.queries).toHaveLength(5);
    expect(e.expectedNxdomain).toBe(4);
    expect(e.sendMode).toBe('A-only');
  });

  it('stops searching at a name too long to encode, then tries as-is', () => {
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}`;
    const e = expandName(long, parseResolvConf(`search ${'d'.repeat(60)}.example.com short.com\noptions ndots:5\n`));
    expect(e.candidates.map((c) => [c.sent, c.reason])).toEqual([
      [false, 'search'],
      [true, 'as-is-last'],
    ]);
  });

  it('rejects names DNS cannot carry', () => {
    const conf = parseResolvConf(k8s);
    expect(() => expandName('a..b', conf)).toThrow(/empty label/);
    expect(() => expandName(`${'x'.repeat(64)}.com`, conf)).toThrow(/at most 63/);
    expect(() => expandName('', conf)).toThrow();
  });
});

describe('musl semantics', () => {
  it('dots >= ndots or a trailing dot: the absolute name only', () => {
    const text = 'search a.com b.com\noptions ndots:2\n';
    expect(names(text, 'x.y.z', { libc: 'musl' })).toEqual(['x.y.z.']);
    expect(names(text, 'x.', { libc: 'musl' })).toEqual(['x.']);
    expect(names(text, 'x', { libc: 'musl' })).toEqual(['x.a.com.', 'x.b.com.', 'x.']);
  });

  it('reads only ndots/attempts/timeout, capped at 15/10/60, and says single-request is ignored', () => {
    const conf = parseResolvConf('options ndots:30 attempts:20 timeout:100 single-request-reopen rotate\n', { libc: 'musl' });
    expect(conf.options).toMatchObject({ ndots: 15, attempts: 10, timeout: 60, singleRequestReopen: false, rotate: false });
    expect(conf.optionsIgnored).toEqual(['single-request-reopen (glibc only: musl ignores it)', 'rotate (glibc only: musl ignores it)']);
    const f = resolvFindings(conf);
    expect(f.map((x) => x.code)).toContain('MUSL_IGNORES_OPTION');
  });

  it('ignores a line of 255 bytes or more whole (its 256-byte fgets buffer)', () => {
    const domains = Array.from({ length: 30 }, (_, i) => `d${i}.example.internal`).join(' ');
    const conf = parseResolvConf(`search ${domains}\nnameserver 10.0.0.1\n`, { libc: 'musl' });
    expect(conf.search).toEqual([]);
    expect(conf.warnings[0]).toMatch(/musl ignores lines of 255 bytes/);
    expect(parseResolvConf(`search ${domains}\n`).search).toHaveLength(30); // glibc reads it
  });

  it('ignores LOCALDOMAIN and RES_OPTIONS', () => {
    const conf = parseResolvConf('search a.com\n', { libc: 'musl', env: { LOCALDOMAIN: 'x.org', RES_OPTIONS: 'ndots:9' } });
    expect(conf.search).toEqual(['a.com']);
    expect(conf.options.ndots).toBe(1);
  });
});

describe('findings', () => {
  it('an option that stops every lookup: attempts:0 (glibc sends nothing; musl divides by it), timeout:0 for musl only', () => {
    const disabled = (text: string, libc: 'glibc' | 'musl') =>
      resolvFindings(parseResolvConf(`nameserver 10.96.0.10\n${text}\n`, { libc })).filter((f) => f.code === 'LOOKUPS_DISABLED').map((f) => [f.severity, f.message]);
    expect(disabled('options attempts:0', 'glibc')).toEqual([['critical', 'options attempts:0: glibc tries each nameserver attempts times: it sends no query at all, and every lookup fails at once']]);
    expect(disabled('options attempts:0', 'musl')[0]?.[1]).toMatch(/^options attempts:0: musl divides its timeout by attempts .* a division by zero/);
    expect(disabled('options timeout:0', 'musl')[0]?.[1]).toMatch(/^options timeout:0: musl sends while less than the timeout has passed: it sends no query at all/);
    // glibc waits at least a second per try: timeout:0 is no harm there.
    expect(disabled('options timeout:0', 'glibc')).toEqual([]);
    expect(disabled('options attempts:1 timeout:1', 'musl')).toEqual([]);
    // musl's strtoul stops at the dot: timeout:0.5 is timeout:0, said in a warning.
    const half = parseResolvConf('nameserver 10.96.0.10\noptions timeout:0.5\n', { libc: 'musl' });
    expect(half.options.timeout).toBe(0);
    expect(half.warnings).toContain('line 2: option "timeout:0.5": musl reads the whole number before ".", timeout:0');
    expect(disabled('options timeout:0.5', 'musl')).toHaveLength(1);
  });

  it('flags amplification, legacy search limits, too many nameservers', () => {
    const conf = parseResolvConf(readFixture('resolv/too-many.conf'));
    const codes = resolvFindings(conf, expandName('api.example.org', conf)).map((f) => `${f.code}:${f.severity}`);
    expect(codes).toEqual(['SEARCH_LIMIT:warning', 'TOO_MANY_NAMESERVERS:warning', 'NO_NODELOCALDNS:info']);
    // api.example.org has 2 dots >= ndots:2: no amplification for it
    const codes2 = resolvFindings(conf, expandName('example.org', conf)).map((f) => f.code);
    expect(codes2[0]).toBe('NDOTS_AMPLIFICATION');
  });

  it('marks NodeLocalDNS as information', () => {
    const conf = parseResolvConf(readFixture('resolv/kubelet-gke-nodelocaldns.conf'));
    const f = resolvFindings(conf);
    expect(f.find((x) => x.code === 'NODELOCALDNS')?.severity).toBe('info');
    expect(f.find((x) => x.code === 'NDOTS_AMPLIFICATION')?.message).toContain('costs 6 names, 12 queries, 10 of them expected NXDOMAIN');
  });

  it('flags a search list over the expanded kubelet limit as critical', () => {
    const search = Array.from({ length: 33 }, (_, i) => `s${i}.example.com`).join(' ');
    const f = resolvFindings(parseResolvConf(`search ${search}\n`));
    expect(f.find((x) => x.code === 'SEARCH_LIMIT')?.severity).toBe('critical');
  });
});

describe('search-list edges (res_query.c, lookup_name.c)', () => {
  const conf = (search: string, libc: 'glibc' | 'musl' = 'glibc') => parseResolvConf(`nameserver 10.96.0.10\nsearch ${search}\noptions ndots:5\n`, { libc });

  it('glibc: a search domain written with its trailing dot gives one absolute name, not ".."', () => {
    const e = expandName('svc-a', conf('ns1.svc.cluster.local. cluster.local'));
    expect(e.candidates.map((c) => c.fqdn)).toEqual(['svc-a.ns1.svc.cluster.local.', 'svc-a.cluster.local.', 'svc-a.']);
  });

  it('musl: the same, since __res_mkquery drops one trailing dot', () => {
    const e = expandName('svc-a', conf('ns1.svc.cluster.local. cluster.local', 'musl'));
    expect(e.candidates.filter((c) => c.sent).map((c) => c.fqdn)).toEqual(['svc-a.ns1.svc.cluster.local.', 'svc-a.cluster.local.', 'svc-a.']);
  });

  it('glibc: a root "." in the search list tries the name as written there, and not again at the end', () => {
    const e = expandName('svc-a', conf('cluster.local .'));
    expect(e.candidates.map((c) => `${c.fqdn} ${c.reason}`)).toEqual(['svc-a.cluster.local. search', 'svc-a. search']);
  });

  it('musl: a root "." cannot be encoded ("svc-a.."): the lookup ends there, nothing after it is tried', () => {
    const e = expandName('svc-a', conf('. cluster.local', 'musl'));
    expect(e.candidates).toHaveLength(1);
    expect(e.candidates[0]).toMatchObject({ fqdn: 'svc-a..', sent: false });
    expect(e.queries).toHaveLength(0);
  });

  it('glibc: a domain with an empty label cannot be encoded and ends the search loop', () => {
    const e = expandName('svc-a', conf('a..b cluster.local'));
    expect(e.candidates[0]).toMatchObject({ sent: false });
    expect(e.candidates.filter((c) => c.sent).map((c) => c.fqdn)).toEqual(['svc-a.']);
  });
});

describe('advice that counts right', () => {
  const eks = parseResolvConf(readFixture('resolv/kubelet-eks.conf'));

  it('kubernetes.default is a Service name: it answers at the second name, after 2 NXDOMAIN, not 8', () => {
    const e = expandName('kubernetes.default', eks);
    expect(e.answerIs).toBe('service');
    expect(e.candidates[e.answerIndex]?.fqdn).toBe('kubernetes.default.svc.cluster.local.');
    expect(e.expectedNxdomain).toBe(2);
    expect(e.queriesToAnswer).toBe(4);
    const f = resolvFindings(eks, e).find((x) => x.code === 'NDOTS_AMPLIFICATION')!;
    expect(f.message).toMatch(/answers at name 2 .*4 queries, 2 of them expected NXDOMAIN/);
  });

  it('google.com is not a Service: 10 queries, 8 NXDOMAIN', () => {
    const e = expandName('google.com', eks);
    expect(e.answerIs).toBe('as-written');
    expect(e.expectedNxdomain).toBe(8);
  });

  it('NO_NODELOCALDNS only for a nameserver in a private range, never for loopback or a public resolver', () => {
    const codes = (ns: string) => resolvFindings(parseResolvConf(`nameserver ${ns}\n`)).map((f) => f.code);
    expect(codes('10.96.0.10')).toContain('NO_NODELOCALDNS');
    expect(codes('fd00:10:96::a')).toContain('NO_NODELOCALDNS');
    expect(codes('127.0.0.53')).not.toContain('NO_NODELOCALDNS');
    expect(codes('1.1.1.1')).not.toContain('NO_NODELOCALDNS');
    expect(codes('169.254.20.10')).toContain('NODELOCALDNS');
  });
});

describe('input that is not a resolv.conf', () => {
  it('binary or keyword-free input is exit 2 with one line', async () => {
    const bin = await run(['resolv', '--file', '-'], { input: '\u0000\u0001garbage\u0002' });
    expect(bin.exitCode).toBe(2);
    expect(bin.stderr.split('\n')[0]).toBe('k8sdiag: binary data: not a resolv.conf');
    const junk = await run(['resolv', '--file', '-'], { input: 'hello world\nthis is not it\n'.repeat(1000) });
    expect(junk.exitCode).toBe(2);
    expect(junk.stderr.trim()).toMatch(/^k8sdiag: not a resolv\.conf: none of its 2000 lines/);
  });

  it('warnings are capped with a count, and echoed input is cut and made printable', async () => {
    const lines = ['nameserver 10.96.0.10', ...Array.from({ length: 50 }, (_, i) => `bogus${i} x`), `options ${'y'.repeat(5000)}\u001b[31m`];
    const res = await run(['resolv', '--file', '-', '--json'], { input: `${lines.join('\n')}\n` });
    expect(res.exitCode).toBe(0);
    const w = JSON.parse(res.stdout).warnings as string[];
    expect(w).toHaveLength(21);
    expect(w[20]).toBe('... and 31 more warnings');
    const all = await run(['resolv', '--file', '-'], { input: `nameserver 10.96.0.10\noptions ${'y'.repeat(5000)}\u001b[31m\n` });
    expect(all.stderr).not.toContain('\u001b');
    expect(all.stderr.length).toBeLessThan(400);
  });

  it('more than 1 MiB is refused', async () => {
    const res = await run(['resolv', '--file', '-'], { input: `nameserver 10.0.0.1\n${'# padding\n'.repeat(120_000)}` });
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toMatch(/more than 1 MiB on stdin/);
  });
});

describe('resolv given nothing', () => {
  it('an empty file and empty stdin are exit 2 with one line and a hint, never "no findings" on glibc\'s defaults', async () => {
    const { run } = await import('../helpers/run.js');
    for (const args of [['resolv', '-f', '-', 'google.com'], ['resolv', '-f', '-']]) {
      const r = await run(args, { input: ' \n\n' });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^k8sdiag: stdin is empty: no nameserver, search, domain or options line to read\nhint: give the pod's resolv\.conf/);
      expect(r.stdout).toBe('');
    }
  });
});
