import { describe, expect, it } from 'vitest';
import { buildView, conntrackFindings } from '../../src/conntrack/analyse.js';
import { parseConntrackInput } from '../../src/conntrack/parse.js';
import { InputError } from '../../src/errors.js';
import { readFixture } from '../helpers/run.js';

const parse = (...files: string[]) => parseConntrackInput(files.map((f) => readFixture(`conntrack/${f}`)).join('\n'));
const codes = (text: string) => conntrackFindings(buildView(parseConntrackInput(text))).map((f) => `${f.code}:${f.severity}`);

describe('conntrack -S, every generation', () => {
  it('Linux 6.18 here: clash_resolve and chaintoolong, 2 CPUs', () => {
    const s = parse('conntrack-S-6.18-idle.txt').stats[0]!;
    expect(s.kind).toBe('conntrack-S');
    expect(s.perCpu).toHaveLength(2);
    expect(s.rawKeys).toContain('clash_resolve');
    expect(s.generation).toMatch(/5\.15 or newer/);
  });

  it('Linux 5.10 with conntrack-tools 1.4.6 (Debian 11): no clash_resolve printed', () => {
    const s = parse('conntrack-S-5.10-debian11.txt').stats[0]!;
    expect(s.perCpu).toHaveLength(4);
    expect(s.totals).toMatchObject({ invalid: 112, search_restart: 1, insert_failed: 0 });
    expect(s.generation).toMatch(/no clash_resolve/);
  });

  it('Linux 4.x with ignore=: sums insert_failed and drop over 8 CPUs', () => {
    const s = parse('conntrack-S-4.x-ignore-telegraf8955.txt').stats[0]!;
    expect(s.perCpu).toHaveLength(8);
    expect(s.totals.insert_failed).toBe(1);
    expect(s.totals.drop).toBe(1);
    expect(s.totals.ignore).toBe(82082383 + 66209961 + 405227001 + 87051149 + 66035032 + 61290338 + 63989180 + 530587402);
  });

  it('old kernels with searched/new/delete_list: the race on a weave node (insert_failed 92 + 107)', () => {
    const input = parse('conntrack-S-old-searched-weave3287.txt');
    const s = input.stats[0]!;
    expect(s.totals.insert_failed).toBe(199);
    expect(s.generation).toMatch(/older than 4\.10/);
    const f = conntrackFindings(buildView(input));
    expect(f[0]).toMatchObject({ code: 'INSERT_FAILED', severity: 'warning' });
    expect(f[0]!.evidence).toMatchObject({ insert_failed: 199, worstCpu: 107 });
    expect(f[0]!.remedy).toMatch(/single-request-reopen/);
    expect(f[0]!.remedy).toMatch(/NodeLocalDNS/);
  });

  it('conntrack-tools 1.4.4 /proc fallback (key<TAB><TAB>value), with its CAP_NET_ADMIN error', () => {
    const input = parse('conntrack-S-fallback-1.4.4-k8s56903.txt');
    const s = input.stats[0]!;
    expect(s.kind).toBe('conntrack-S-fallback');
    expect(s.entries).toBe(90);
    expect(s.totals).toMatchObject({ found: 3774748, insert: 132421, insert_failed: 0, error: 0 });
    expect(input.toolErrors[0]).toMatch(/CAP_NET_ADMIN/);
  });

  it('the one-line /proc fallback shape: cpu=N entries=... clashres=...', () => {
    const input = parseConntrackInput('cpu=0 entries=12 clashres=3 found=0 new=0 invalid=1 ignore=0 delete=0 chainlength=0 insert=0 insert_failed=2 drop=0 early_drop=0 icmp_error=0 expect_new=0 expect_create=0 expect_delete=0 search_restart=0\n');
    const s = input.stats[0]!;
    expect(s.kind).toBe('conntrack-S-fallback');
    expect(s.entries).toBe(12);
    expect(s.totals).toMatchObject({ clash_resolve: 3, insert_failed: 2, chaintoolong: 0, error: 0 });
  });
});

describe('/proc/net/stat/nf_conntrack', () => {
  it('Linux 6.18 header (clashres, chainlength): hex rows, entries global', () => {
    const s = parse('proc-stat-6.18-pressure.txt').stats[0]!;
    expect(s.kind).toBe('proc-stat');
    expect(s.entries).toBe(0x92f);
    expect(s.totals).not.toHaveProperty('entries');
    expect(s.totals).toHaveProperty('clash_resolve');
    expect(s.totals).toHaveProperty('chaintoolong');
    expect(s.generation).toMatch(/5\.15 or newer/);
  });

  it('Linux 5.10 header (clashres, delete_list)', () => {
    const s = parse('proc-stat-5.10-debian11.txt').stats[0]!;
    expect(s.generation).toMatch(/5\.10 to 5\.14/);
    expect(s.totals.invalid).toBe(0x70);
  });

  it('Linux 3.x-5.9 header (searched, search_restart)', () => {
    const s = parse('proc-stat-4.x-format.txt').stats[0]!;
    expect(s.generation).toMatch(/3\.x to 5\.9/);
    expect(s.totals.insert_failed).toBe(0xbb + 0xa4);
    expect(s.totals.search_restart).toBe(21);
  });

  it('Linux 2.6 header (16 columns, trailing blank)', () => {
    const s = parse('proc-stat-2.6-format.txt').stats[0]!;
    expect(s.rawKeys).toHaveLength(16);
    expect(s.generation).toMatch(/2\.6/);
    expect(s.totals.insert_failed).toBe(4);
  });

  it('prefers netlink counters over /proc when both are given', () => {
    const input = parse('proc-stat-6.18-table-full.txt', 'conntrack-S-6.18-table-full.txt');
    expect(input.stats.map((s) => s.kind).sort()).toEqual(['conntrack-S', 'proc-stat']);
    expect(buildView(input).countersSource).toBe('conntrack-S');
  });
});

describe('sysctl and kernel log', () => {
  it('reads sysctl -a and finds table pressure from count/max (94%, real capture)', () => {
    const input = parse('sysctl-6.18-pressure.txt', 'conntrack-S-6.18-pressure.txt');
    expect(input.sysctl).toMatchObject({ nf_conntrack_count: 2351, nf_conntrack_max: 2500, nf_conntrack_udp_timeout: 30 });
    const view = buildView(input);
    expect(view.table.usage).toBeCloseTo(0.9404, 4);
    const f = conntrackFindings(view);
    expect(f.map((x) => `${x.code}:${x.severity}`)).toEqual(['TABLE_PRESSURE:warning']);
    expect(f[0]!.message).toBe('conntrack table 94.0% full (2351 of 2500)');
    expect(f[0]!.remedy).toMatch(/nf_conntrack_max \(now 2500\)/);
  });

  it('critical from 95%, nothing below 80%', () => {
    expect(codes('net.netfilter.nf_conntrack_count = 950\nnet.netfilter.nf_conntrack_max = 1000\n')).toEqual(['TABLE_PRESSURE:critical']);
    expect(codes('net.netfilter.nf_conntrack_count = 799\nnet.netfilter.nf_conntrack_max = 1000\n')).toEqual([]);
    expect(codes('net.netfilter.nf_conntrack_count = 800\nnet.netfilter.nf_conntrack_max = 1000\n')).toEqual(['TABLE_PRESSURE:warning']);
  });

  it('maps legacy ip_conntrack sysctls', () => {
    const input = parse('sysctl-legacy-ip_conntrack.txt');
    expect(input.sysctl).toMatchObject({ nf_conntrack_count: 62011, nf_conntrack_max: 65536, nf_conntrack_udp_timeout: 30 });
    expect(codes(readFixture('conntrack/sysctl-legacy-ip_conntrack.txt'))).toEqual(['TABLE_PRESSURE:warning']);
  });

  it('ignores other sysctls without calling them unrecognised', () => {
    const input = parse('sysctl-a-6.18.txt');
    expect(input.unrecognised).toBe(0);
    expect(input.sysctl.nf_conntrack_max).toBe(262144);
  });

  it('finds table full in a real dmesg line (netns form) and drop in conntrack -S', () => {
    const input = parse('dmesg-6.18-table-full.txt', 'conntrack-S-6.18-table-full.txt');
    expect(input.kernelLog.netns).toEqual(['4026532177']);
    // The dmesg line carries no date and nothing says when it was read: its age is unknown, so a warning, not critical.
    const f = conntrackFindings(buildView(input));
    expect(f.map((x) => `${x.code}:${x.severity}`)).toEqual(['DROP:warning', 'TABLE_FULL:warning']);
    expect(f[1]!.message).toMatch(/its age is unknown/);
  });

  it('finds table full in syslog lines with and without the doubled prefix, counts suppressed', () => {
    const input = parse('syslog-table-full-older.txt');
    expect(input.kernelLog.tableFull).toHaveLength(3);
    expect(input.kernelLog.suppressed).toBe(312);
  });

  it('net_ratelimit suppresses every network message: its count is conntrack\'s only right before a table-full line', () => {
    const input = parseConntrackInput(
      [
        '[100.000001] net_ratelimit: 40 callbacks suppressed',
        '[100.000002] IPv4: martian source 10.0.0.9 from 10.0.0.1, on dev eth0',
        '[101.000001] net_ratelimit: 7 callbacks suppressed',
        '[101.000002] nf_conntrack: nf_conntrack: table full, dropping packet',
        '[102.000001] nf_conntrack: 5 callbacks suppressed',
      ].join('\n'),
      new Date(),
    );
    // 7 before a table-full line, and nf_conntrack's own 5; not the 40 before a martian-source line.
    expect(input.kernelLog.suppressed).toBe(12);
  });

  it('a table-full line older than an hour is a warning, a recent one critical', () => {
    const input = parse('dmesg-6.18-table-full.txt');
    expect(input.kernelLog.lastAtSeconds).toBeCloseTo(481.148257, 6);
    input.kernelLog.ageSeconds = 4000;
    expect(conntrackFindings(buildView(input))[0]).toMatchObject({ code: 'TABLE_FULL', severity: 'warning' });
    expect(conntrackFindings(buildView(input))[0]!.message).toMatch(/the last 67 min ago/);
    input.kernelLog.ageSeconds = 30;
    expect(conntrackFindings(buildView(input))[0]).toMatchObject({ code: 'TABLE_FULL', severity: 'critical' });
  });

  it('a table-full line that appeared during --watch is critical whatever the age of the others', () => {
    const input = parse('dmesg-6.18-table-full.txt');
    input.kernelLog.ageSeconds = 4000;
    const f = conntrackFindings(buildView(input), { origin: 'watch', seconds: 5, deltas: {}, newTableFullLines: 1 })[0]!;
    expect(f).toMatchObject({ code: 'TABLE_FULL', severity: 'critical' });
    expect(f.message).toMatch(/1 new during the 5 s watch/);
  });

  it('insert_failed rising during --watch is critical and reports its rate', () => {
    const view = buildView(parseConntrackInput('cpu=0 found=0 insert_failed=40 drop=0\n'));
    const f = conntrackFindings(view, { origin: 'watch', seconds: 10, newTableFullLines: 0, deltas: { insert_failed: { before: 20, after: 40, delta: 20, perSecond: 2, reset: false } } })[0]!;
    expect(f).toMatchObject({ code: 'INSERT_FAILED', severity: 'critical' });
    expect(f.message).toMatch(/rising: 20 in 10s \(2\.00\/s\)/);
    expect(f.evidence).toMatchObject({ insert_failedPerSecond: 2, insert_failedDelta: 20 });
  });

  it('reports clash_resolve as information only', () => {
    expect(codes('cpu=0 found=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=17 chaintoolong=0\n')).toEqual(['CLASH_RESOLVE:info']);
  });

  it('reports early_drop', () => {
    expect(codes('cpu=0 found=0 insert_failed=0 drop=0 early_drop=5\n')).toEqual(['EARLY_DROP:warning']);
  });
});

describe('bad input', () => {
  const bad = (text: string, re: RegExp) => {
    expect(() => parseConntrackInput(text)).toThrow(InputError);
    expect(() => parseConntrackInput(text)).toThrow(re);
  };
  it('rejects empty input', () => bad('  \n\n', /empty input/));
  it('rejects text with nothing recognisable', () => bad('hello world\nthis is not conntrack\n', /nothing recognisable/));
  it('rejects binary junk', () => bad('\u0000\u0001\u0002abc\uFFFD', /binary/));
  it('rejects negative counters', () => bad('cpu=0 found=0 insert_failed=-3\n', /negative/));
  it('rejects counters beyond 32 bits', () => bad('cpu=0 insert_failed=99999999999\n', /out of range/));
  it('rejects non-numeric counters', () => bad('cpu=0 insert_failed=abc\n', /not a number/));
  it('rejects hex rows without their header', () => bad('00000001  00000000 00000000 00000000 00000000 00000000 00000000 00000000\n', /header/));
  it('rejects rows with a wrong column count', () =>
    bad('entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n', /columns/));
  it('rejects sysctl output without conntrack values', () => bad('net.ipv4.ip_forward = 1\n', /without any nf_conntrack/));
  it('warns about unrecognised lines among good ones', () => {
    const input = parseConntrackInput('some banner\ncpu=0 found=0 insert_failed=0\n');
    expect(input.warnings).toEqual(['1 line not recognised and ignored']);
  });
});
