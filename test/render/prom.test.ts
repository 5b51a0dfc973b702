/**
 * -o prom: the output parsed with a Prometheus text-format parser from npm;
 * names, types, units and the histogram's cumulative buckets checked.
 */
import { describe, expect, it } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { parseFault } from '../../src/dns/responder.js';
import { Exposition } from '../../src/render/prom.js';
import { Histogram, LATENCY_MARKS_US } from '../../src/stats/index.js';
import { startResponder } from '../helpers/responders.js';
import { readFixture, run } from '../helpers/run.js';

function families(text: string) {
  // execa strips the final newline the exposition ends with; the parser needs it.
  const fams = parsePrometheusTextFormat(`${text}\n`);
  // Prometheus rejects a page that writes one series twice: the same name with the same labels, in any order.
  const series = new Set<string>();
  for (const line of text.trim().split('\n')) {
    if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) k8sdiag_[a-z0-9_]+ /);
    else {
      const m = /^(k8sdiag_[a-z0-9_]+)(?:\{([^}]*)\})? (-?[\d.e+-]+|\+Inf)$/.exec(line);
      expect(m, line).not.toBeNull();
      const labels = [...(m![2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}=${l[2]}`).sort().join(',');
      const key = `${m![1]}{${labels}}`;
      expect(series.has(key), `duplicate series ${key}`).toBe(false);
      series.add(key);
    }
  }
  return new Map(fams.map((f) => [f.name, f]));
}

/** The histogram's buckets as [le in whole microseconds, count]; +Inf as Infinity. */
function buckets(text: string): Array<[number, number]> {
  const fam = families(text).get('k8sdiag_test_seconds')!;
  const out = Object.entries(fam.metrics[0]!.buckets!).map(([le, c]): [number, number] => [le === '+Inf' ? Infinity : Math.round(Number(le) * 1e6), Number(c)]);
  return out.sort((a, b) => a[0] - b[0]);
}

describe('-o prom histograms', () => {
  // Whole microseconds, as the engine records them; some exactly on the marks (1 ms, 1 s, 5 s).
  const values = [0, 250, 999, 1_000, 1_000, 1_001, 1_500, 999_999, 1_000_000, 1_000_001, 4_999_999, 5_000_000, 5_000_000, 5_000_001, 12_345_678];
  const atOrBelow = (le: number) => values.filter((v) => v <= le).length;
  const snapshot = () => {
    const h = new Histogram('us', LATENCY_MARKS_US);
    for (const v of values) h.record(v);
    return h.toJSON();
  };

  it('a bucket counts the values at or below its le, as Prometheus defines it, at round le values', () => {
    const text = new Exposition({ node: 'n' }).histogram('k8sdiag_test_seconds', 'test', snapshot()).toString();
    const got = buckets(text);
    expect(got.map(([le]) => le)).toEqual([...LATENCY_MARKS_US, Infinity]);
    for (const [le, count] of got) expect(count, `le=${le / 1e6}`).toBe(le === Infinity ? values.length : atOrBelow(le));
  });

  it('a snapshot without the counts on the marks (an older version, through merge): le 1 us below each mark, still exact', () => {
    const { atMarks: _unknown, ...older } = snapshot();
    const got = buckets(new Exposition({ node: 'n' }).histogram('k8sdiag_test_seconds', 'test', older).toString());
    expect(got.map(([le]) => le)).toEqual([...LATENCY_MARKS_US.map((m) => m - 1), Infinity]);
    for (const [le, count] of got) expect(count, `le=${le / 1e6}`).toBe(le === Infinity ? values.length : atOrBelow(le));
  });
});

describe('-o prom', () => {
  it('dnsbench: counters, and the latency histogram with cumulative buckets ending at +Inf = _count', async () => {
    const r = await startResponder({ faults: [parseFault('delay:1100@every=50'), parseFault('drop@every=40'), parseFault('servfail@every=10')] });
    const res = await run(['dnsbench', '-o', 'prom', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '10', '-n', '200', '--timeout', '2', '-s', '1']);
    // Slow lines go to stderr as NDJSON: stdout is the exposition only.
    expect(res.stderr.trim().split('\n').filter((l) => l.includes('"event":"slow"'))).toHaveLength(4);
    expect(res.exitCode).toBe(1);
    const f = families(res.stdout);
    expect(f.get('k8sdiag_dns_queries_sent_total')?.type).toBe('COUNTER');
    expect(Number(f.get('k8sdiag_dns_queries_sent_total')!.metrics[0]!.value)).toBe(200);
    // The first rule that fires wins: delays at 50, 100, 150, 200; drops at 40, 80, 120, 160; SERVFAIL at the other 12 tens.
    expect(f.get('k8sdiag_dns_timeouts_total')!.metrics[0]!.value).toBe('4');
    const answers = Object.fromEntries(f.get('k8sdiag_dns_answers_total')!.metrics.map((m) => [m.labels!.rcode, Number(m.value)]));
    expect(answers).toEqual({ NOERROR: 184, SERVFAIL: 12 });
    const h = f.get('k8sdiag_dns_query_duration_seconds')!;
    expect(h.type).toBe('HISTOGRAM');
    // This parser keeps the buckets of a labelled histogram but not its _count and _sum: read those lines directly.
    const m = h.metrics[0]!;
    const line = (suffix: string) => new RegExp(`^k8sdiag_dns_query_duration_seconds_${suffix}\\{node="[^"]+",nameserver="127\\.0\\.0\\.1:${r.udpPort}"\\} (\\S+)$`, 'm').exec(res.stdout)?.[1];
    m.count = line('count');
    m.sum = line('sum');
    // The parser returns buckets as an object: order them by le (+Inf last).
    const entries = Object.entries(m.buckets!).sort(([a], [b]) => (a === '+Inf' ? Infinity : Number(a)) - (b === '+Inf' ? Infinity : Number(b)));
    const les = entries.map(([le]) => le);
    const counts = entries.map(([, c]) => Number(c));
    for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!);
    expect(les).toContain('1');
    expect(les).toContain('5');
    expect(les.at(-1)).toBe('+Inf');
    expect(counts.at(-1)).toBe(Number(m.count));
    expect(Number(m.count)).toBe(196);
    // The 4 answers delayed 1.1 s are above the 1 s bucket and within the 2 s one.
    expect(Number(m.buckets!['2']) - Number(m.buckets!['1'])).toBe(4);
    expect(Number(m.sum)).toBeGreaterThan(4.4);
    const finding = f.get('k8sdiag_finding')!;
    expect(finding.metrics.map((x) => x.labels!.code)).toEqual(expect.arrayContaining(['TIMEOUTS', 'SLOW', 'SERVFAIL']));
    expect(finding.metrics[0]!.labels).toHaveProperty('node');
  });

  it('conntrack: one series per CPU, as the kernel counts (each 32-bit counter wraps on its own)', async () => {
    const text = readFixture('conntrack/conntrack-S-old-searched-weave3287.txt');
    const want = [...text.matchAll(/^cpu=(\d+)\s.*\binsert_failed=(\d+)/gm)].map((m) => [m[1], Number(m[2])]);
    expect(want.length).toBeGreaterThan(1);
    const res = await run(['conntrack', '-o', 'prom'], { input: text });
    const f = families(res.stdout).get('k8sdiag_conntrack_insert_failed_total')!;
    expect(f.metrics.map((m) => [m.labels!.cpu, Number(m.value)])).toEqual(want);
  });

  it('conntrack: counters as counters, table usage as a gauge', async () => {
    const res = await run(['conntrack', '-o', 'prom'], { input: [readFixture('conntrack/conntrack-S-6.18-pressure.txt'), readFixture('conntrack/sysctl-6.18-pressure.txt')].join('\n') });
    const f = families(res.stdout);
    expect(f.get('k8sdiag_conntrack_insert_failed_total')?.type).toBe('COUNTER');
    expect(f.get('k8sdiag_conntrack_usage_ratio')?.type).toBe('GAUGE');
    expect(Number(f.get('k8sdiag_conntrack_usage_ratio')!.metrics[0]!.value)).toBeGreaterThan(0.8);
    expect(f.get('k8sdiag_finding')!.metrics.map((m) => m.labels!.code)).toContain('TABLE_PRESSURE');
  });

  it('svc: endpoint shares as gauges; resolv has no prom output and says so', async () => {
    const res = await run(['svc', '-o', 'prom'], { input: readFixture('svc/iptables-save-overall.txt') });
    const f = families(res.stdout);
    const shares = f.get('k8sdiag_svc_endpoint_share_ratio')!.metrics;
    expect(shares.length).toBeGreaterThan(0);
    for (const m of shares) expect(Number(m.value)).toBeLessThanOrEqual(1);
    // Several findings of one code and severity (two Services' LOCAL_POLICY): one series, with their count.
    const shapes = await run(['svc', '-o', 'prom'], { input: readFixture('svc/iptables-save-cluster-shapes.txt') });
    const doc = JSON.parse((await run(['svc', '--json'], { input: readFixture('svc/iptables-save-cluster-shapes.txt') })).stdout) as { findings: Array<{ code: string; severity: string }> };
    const byKey = new Map<string, number>();
    for (const x of doc.findings) byKey.set(`${x.code} ${x.severity}`, (byKey.get(`${x.code} ${x.severity}`) ?? 0) + 1);
    expect([...byKey.values()].some((n) => n > 1)).toBe(true);
    const got = new Map(families(shapes.stdout).get('k8sdiag_finding')!.metrics.map((m) => [`${m.labels!.code} ${m.labels!.severity}`, Number(m.value)]));
    expect(got).toEqual(byKey);
    const no = await run(['resolv', '-o', 'prom', '--file', '-'], { input: 'nameserver 10.0.0.1\n' });
    expect(no.exitCode).toBe(2);
    expect(no.stderr.trim()).toBe("k8sdiag: option '-o, --output <format>' argument 'prom' is invalid. Allowed choices are human, json, line.");
  });
});

describe('-o prom of watch', () => {
  it('a real capture: per endpoint, no series twice, the latency histogram counting the answered queries', async () => {
    const capture = new URL('../fixtures/capture/glibc-sll2.pcap', import.meta.url).pathname;
    const prom = await run(['watch', '--pcap', capture, '--timeout', '1', '-o', 'prom']);
    const json = JSON.parse((await run(['watch', '--pcap', capture, '--timeout', '1', '--json'])).stdout) as { answered: number; byEndpoint: Record<string, { queries: number; unanswered: number }> };
    const fams = families(prom.stdout);
    const queries = fams.get('k8sdiag_watch_queries')!.metrics.map((m) => [m.labels!['endpoint'], Number(m.value)]);
    expect(queries).toEqual(Object.entries(json.byEndpoint).map(([e, g]) => [e, g.queries]));
    // The parser keeps a histogram's buckets, not its _count: read that line directly.
    expect(Number(/^k8sdiag_watch_query_duration_seconds_count\{[^}]*\} (\d+)$/m.exec(prom.stdout)?.[1])).toBe(json.answered);
    expect(fams.get('k8sdiag_watch_query_duration_seconds')!.metrics[0]!.buckets!['+Inf']).toBe(String(json.answered));
    expect(fams.get('k8sdiag_finding')!.metrics.map((m) => m.labels!['code']).sort()).toEqual(['QUERY_STALLS', 'RACE_SIGNATURE', 'SEARCH_LIST_WASTE']);
  });
});
