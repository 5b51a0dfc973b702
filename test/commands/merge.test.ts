/** merge: exact histogram merging, counters adding, every input shape, and what it refuses. */
import { describe, expect, it } from 'vitest';
import { fromEngine } from '../../src/commands/dnsbench.js';
import type { DnsbenchInput } from '../../src/commands/dnsbench.js';
import { runMerge, splitDocuments } from '../../src/commands/merge.js';
import type { EngineResult } from '../../src/engine/engine.js';
import { Histogram, LATENCY_MARKS_US, mulberry32 } from '../../src/stats/index.js';
import { run } from '../helpers/run.js';

const input: DnsbenchInput = { server: '10.96.0.10', port: 53, queries: [{ name: 'a.b', type: 'A' }], concurrency: 10, timeoutMs: 5000, slowMs: 5000, tcpRetry: false };

function engine(h: Histogram, timeouts: number): EngineResult {
  return {
    sent: h.count + timeouts, answered: h.count, timeouts, slow: 0, late: 0, wrongId: 0, wrongQuestion: 0, malformed: 0, truncated: 0, tcpRetries: 0,
    errors: {}, unattributedErrors: {}, rcodes: { NOERROR: h.count }, histogram: h, durationMs: 1000, lastAnswerMs: 1000, interrupted: false, sourcePorts: 256,
    localDrops: { ownSockets: 0, namespace: null, recvBufferBytes: null },
  };
}
const header = (host: string, startedAt = '2026-11-25T10:00:00.000Z') => ({ schema: 'k8sdiag.dnsbench/1', tool: '0.1.0', host, startedAt, durationMs: 1000 });

describe('merge', () => {
  it('a run split in parts merges to the counts and percentiles of the whole', () => {
    const r = mulberry32(7);
    const whole = new Histogram('us', LATENCY_MARKS_US);
    const parts = [new Histogram('us', LATENCY_MARKS_US), new Histogram('us', LATENCY_MARKS_US), new Histogram('us', LATENCY_MARKS_US)];
    for (let i = 0; i < 30_000; i++) {
      const v = r() < 0.002 ? 5_000_000 + Math.floor(r() * 50_000) : Math.floor(500 + r() * 4000);
      whole.record(v);
      parts[i % 3]!.record(v);
    }
    const docs = parts.map((p, i) => fromEngine(input, engine(p, i), null, header(`node-${i}`)));
    const all = fromEngine(input, engine(whole, 3), null, header('all'));
    const m = runMerge({ texts: docs.map((d, i) => ({ text: JSON.stringify(d), origin: `part${i}` })) });
    const g = m.groups[0]!;
    expect(g.documents).toBe(3);
    expect(g.dnsbench).toMatchObject({ sent: all.sent, answered: all.answered, timeouts: 3, stalls: all.stalls });
    expect(g.dnsbench!.latencyMs).toEqual(all.latencyMs);
    expect(g.dnsbench!.histogram).toEqual(all.histogram);
  });

  it('a report merged with itself doubles the counts and keeps the percentiles', () => {
    const h = new Histogram('us', LATENCY_MARKS_US);
    for (let i = 1; i <= 1000; i++) h.record(i * 10);
    const one = fromEngine(input, engine(h, 5), null, header('n1'));
    const doc = JSON.stringify(one);
    // Another run of the node, an hour later: the same figures.
    const later = JSON.stringify({ ...one, startedAt: new Date(Date.parse(one.startedAt) + 3_600_000).toISOString() });
    const g = runMerge({ texts: [{ text: `${doc}\n${later}`, origin: 'x' }] }).groups[0]!;
    expect(g.dnsbench).toMatchObject({ sent: 2010, answered: 2000, timeouts: 10 });
    expect(g.dnsbench!.latencyMs).toEqual(h.summaryIn(1000));
    // The same document twice (a log read twice) is one run, with a warning.
    const twice = runMerge({ texts: [{ text: `${doc}\n${doc}`, origin: 'x' }] });
    expect(twice.groups[0]!.dnsbench).toMatchObject({ sent: 1005, answered: 1000 });
    expect(twice.skipped).toEqual([`x: the k8sdiag.dnsbench/1 document from n1 started at ${one.startedAt} is in the input more than once: counted once`]);
  });

  it('a document is a duplicate only when its schema, node, start and duration are all the same', () => {
    const c = (host: string, startedAt: string, durationMs: number) => JSON.stringify({ schema: 'k8sdiag.conntrack/1', host, startedAt, durationMs, counters: { drop: 1 } });
    const docs = [
      c('a', '2026-01-01T00:00:00.000Z', 10),
      c('a', '2026-01-01T00:00:00.000Z', 11), // same start, another run
      c('b', '2026-01-01T00:00:00.000Z', 10), // another node
      c('a', '2026-01-01T00:00:00.001Z', 10), // a millisecond later
      c('a', '2026-01-01T00:00:00Z', 10), // the same instant written otherwise: another text, kept
      c('a', 'not a time', 10),
      // Duplicates of each of the first, second, fifth and sixth:
      c('a', '2026-01-01T00:00:00.000Z', 10),
      c('a', '2026-01-01T00:00:00.000Z', 11),
      c('a', '2026-01-01T00:00:00Z', 10),
      c('a', 'not a time', 10),
    ];
    const m = runMerge({ texts: [{ text: docs.join('\n'), origin: 'x' }] });
    expect(m.groups[0]!.documents).toBe(6);
    expect(m.skipped).toHaveLength(4);
    expect(m.skipped.every((w) => w.endsWith('is in the input more than once: counted once'))).toBe(true);
  });

  it('rates per run: two runs 30 minutes apart give their own rate (median), not answers over the half hour; concurrent runs add', () => {
    const h = new Histogram('us', LATENCY_MARKS_US);
    for (let i = 1; i <= 1000; i++) h.record(i * 10);
    const base = fromEngine(input, engine(h, 0), null, header('n1'));
    // Written out: each run answered 1000 in its durationMs.
    const run = (host: string, offsetMs: number, durationMs: number) => JSON.stringify({ ...base, host, startedAt: new Date(Date.parse(base.startedAt) + offsetMs).toISOString(), durationMs });
    const apart = runMerge({ texts: [{ text: [run('a', 0, 42_000), run('a', 1_800_000, 42_000)].join('\n'), origin: 'x' }] }).groups[0]!.dnsbench!;
    expect(apart.qpsOf).toBe('median');
    expect(apart.qps).toBe(23.8); // 1000 / 42 s
    const atOnce = runMerge({ texts: [{ text: [run('a', 0, 40_000), run('b', 1000, 50_000)].join('\n'), origin: 'x' }] }).groups[0]!.dnsbench!;
    expect(atOnce.qpsOf).toBe('sum');
    expect(atOnce.qps).toBe(45); // 1000 / 40 s + 1000 / 50 s
    expect(atOnce.qpsPerRun).toEqual({ min: 20, median: 22.5, max: 25 });
  });

  it('conntrack counters since boot: of each node its latest document, not the sum of its hourly ones', () => {
    const doc = (host: string, startedAt: string, insertFailed: number) => JSON.stringify({ schema: 'k8sdiag.conntrack/1', host, startedAt, durationMs: 10, counters: { insert_failed: insertFailed }, findings: [] });
    const m = runMerge({ texts: [{ text: [doc('a', '2026-01-01T01:00:00Z', 10), doc('a', '2026-01-01T02:00:00Z', 14), doc('b', '2026-01-01T01:30:00Z', 3)].join('\n'), origin: 'x' }] });
    expect(m.groups[0]!.conntrack!.counters).toEqual({ insert_failed: 17 });
  });

  it('reads one per file, NDJSON, pretty-printed concatenated, and kubectl logs --prefix lines', () => {
    const a = { schema: 'k8sdiag.conntrack/1', host: 'a', counters: { insert_failed: 2 }, table: { usage: 0.5 }, findings: [] };
    const b = { schema: 'k8sdiag.conntrack/1', host: 'b', counters: { insert_failed: 3 }, table: { usage: 0.9 }, findings: [{ code: 'TABLE_PRESSURE', severity: 'warning', message: 'm' }] };
    const pretty = JSON.stringify(a, null, 2);
    const prefixed = JSON.stringify(b, null, 2).split('\n').map((l) => `[pod/k8sdiag-x/k8sdiag] ${l}`).join('\n');
    const { docs } = splitDocuments(`${pretty}\n${prefixed}\n${JSON.stringify(a)}\n`);
    expect(docs).toHaveLength(3);
    const m = runMerge({ texts: [{ text: `${pretty}${prefixed}`, origin: 'logs' }] });
    expect(m.groups[0]!.conntrack).toEqual({ counters: { insert_failed: 5 }, maxTableUsage: 0.9 });
    expect(m.groups[0]!.findings).toEqual([{ code: 'TABLE_PRESSURE', severity: 'warning', nodes: ['b'], of: 2, example: 'm' }]);
  });

  it('a stray brace in a log line, or a truncated document, is junk for its line only: the documents after it still merge', () => {
    const doc = (host: string) => JSON.stringify({ schema: 'k8sdiag.conntrack/1', host, counters: { insert_failed: 1 }, findings: [] });
    const text = [
      'level=error msg="lookup failed" ctx={ not json',
      doc('a'),
      '{"schema":"k8sdiag.conntrack/1","host":"cut-off","counters":{"insert_f',
      `${doc('b')}${doc('c')}`,
      `{ "schema": "k8sdiag.conntrack/1",`,
      `  "host": "pretty", "counters": { "insert_failed": 1 } }`,
    ].join('\n');
    const { docs, garbage } = splitDocuments(text);
    expect(docs.map((d) => (d as { host: string }).host)).toEqual(['a', 'b', 'c', 'pretty']);
    expect(garbage).toEqual(['"level=error msg=\"lookup failed\" ctx={ not json"', '"{"schema":"k8sdiag.conntrack/1","host":"cut-off","counters":{"insert_f"']);
    expect(runMerge({ texts: [{ text, origin: 'logs' }] }).groups[0]!.conntrack?.counters.insert_failed).toBe(4);
  });

  it('many objects that never close: a bounded number of scans, the rest junk', () => {
    const text = `${'{ "open": [\n'.repeat(50)}${JSON.stringify({ schema: 'k8sdiag.conntrack/1', host: 'late', counters: {} })}\n`;
    const { docs, garbage } = splitDocuments(text);
    expect(docs).toEqual([]);
    expect(garbage).toContain('8 objects that never close: the rest is read as junk');
  });

  it('ranks nodes by stall rate; unknown documents and mixed versions get a line each, the rest merged', () => {
    const h = new Histogram('us', LATENCY_MARKS_US);
    h.recordMany(1000, 100);
    const calm = fromEngine(input, engine(h, 0), null, header('calm'));
    const bad = fromEngine(input, engine(h, 10), null, header('bad'));
    const m = runMerge({ texts: [{ text: [calm, bad].map((d) => JSON.stringify(d)).join('\n') + '\n{"hello":1}\n{"schema":"k8sdiag.dnsbench/2","host":"new"}\nnot json at all\n', origin: 'in' }] });
    const v1 = m.groups.find((g) => g.schema === 'k8sdiag.dnsbench/1')!;
    expect(v1.nodes.map((n) => n.host)).toEqual(['bad', 'calm']);
    expect(m.groups.map((g) => g.schema)).toEqual(['k8sdiag.dnsbench/1', 'k8sdiag.dnsbench/2']);
    expect(m.skipped.join('\n')).toMatch(/without a k8sdiag schema/);
    expect(m.skipped.join('\n')).toMatch(/another version of k8sdiag\.dnsbench/);
    expect(m.skipped.join('\n')).toMatch(/not JSON: "not json at all"/);
  });

  it('a document cut short over many lines is one warning, not one per line; a count that is not a whole number is refused', () => {
    const pretty = JSON.stringify({ schema: 'k8sdiag.conntrack/1', host: 'x', counters: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`c${i}`, i])) }, null, 2);
    const cut = pretty.slice(0, Math.floor(pretty.length / 2));
    const { docs, garbage } = splitDocuments(`${cut}\n${JSON.stringify({ schema: 'k8sdiag.conntrack/1', host: 'y', counters: { drop: 1 } })}\n`);
    expect(docs).toHaveLength(1);
    const lines = cut.split('\n').length;
    expect(garbage).toEqual([`"{" and the ${lines - 1} lines after it (a document cut short?)`]);
    const ok = JSON.stringify({ schema: 'k8sdiag.conntrack/1', host: 'w', counters: { drop: 2 } });
    const huge = runMerge({ texts: [{ text: `${JSON.stringify({ schema: 'k8sdiag.conntrack/1', host: 'z', counters: { drop: 1e300 } })}\n${ok}`, origin: 'in' }] });
    expect(huge.skipped).toEqual(['in: a k8sdiag.conntrack/1 document from z that cannot be merged: counters are missing or not counts (whole numbers from 0 to 2^53)']);
  });

  it('a document that does not add up is skipped with its reason, before any of its figures is used; the rest merge', () => {
    const h = new Histogram('us', LATENCY_MARKS_US);
    h.recordMany(1000, 100);
    const good = fromEngine(input, engine(h, 2), null, header('good'));
    const { histogram: _h, ...noHistogram } = good;
    const broken = [
      { ...noHistogram, host: 'no-histogram' },
      { ...good, host: 'short-buckets', histogram: { ...good.histogram, count: good.histogram.count + 1 } },
      { ...good, host: 'text-count', sent: 'many' },
      { ...good, host: 'odd-severity', findings: [{ code: 'X', severity: 'toString', message: 'm' }] },
      { ...good, host: undefined },
      { schema: 'k8sdiag.conntrack/1', host: 'ct', counters: { insert_failed: -1 } },
    ];
    const m = runMerge({ texts: [{ text: [good, ...broken].map((d) => JSON.stringify(d)).join('\n'), origin: 'in' }] });
    expect(m.groups.map((g) => [g.schema, g.nodes.map((n) => n.host)])).toEqual([['k8sdiag.dnsbench/1', ['good']]]);
    expect(m.groups[0]!.dnsbench).toMatchObject({ sent: 102, answered: 100, timeouts: 2 });
    expect(m.skipped).toEqual([
      'in: a k8sdiag.dnsbench/1 document from no-histogram that cannot be merged: its histogram is missing or does not add up',
      'in: a k8sdiag.dnsbench/1 document from short-buckets that cannot be merged: its histogram is missing or does not add up',
      'in: a k8sdiag.dnsbench/1 document from text-count that cannot be merged: sent is not a count (a whole number from 0 to 2^53)',
      'in: a k8sdiag.dnsbench/1 document from odd-severity that cannot be merged: a finding without a code or a known severity',
      'in: a k8sdiag.dnsbench/1 document that cannot be merged: no host',
      'in: a k8sdiag.conntrack/1 document from ct that cannot be merged: counters are missing or not counts (whole numbers from 0 to 2^53)',
    ]);
  });

  it('the CLI: nothing to merge is exit 2 with one line; findings set exit 1', async () => {
    const broken = await run(['merge'], { input: '{"schema":"k8sdiag.dnsbench/1"}\n' });
    expect(broken.exitCode).toBe(2);
    expect(broken.stderr.trim().split('\n')[0]).toBe('k8sdiag: no k8sdiag JSON documents to merge (1 skipped: stdin: a k8sdiag.dnsbench/1 document that cannot be merged: no host)');
    const none = await run(['merge'], { input: 'hello\n' });
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/^k8sdiag: no k8sdiag JSON documents to merge/m);
    const doc = { schema: 'k8sdiag.conntrack/1', host: 'a', counters: { insert_failed: 2 }, findings: [{ code: 'INSERT_FAILED', severity: 'warning', message: 'x' }] };
    const res = await run(['merge'], { input: JSON.stringify(doc) });
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toContain('INSERT_FAILED on 1 of 1 node: a');
  });

  it('-o line (what node-problem-detector shows) and the JSON findings carry the code and a message, never "PROBLEM: "', async () => {
    const doc = (host: string, code: string) => JSON.stringify({ schema: 'k8sdiag.conntrack/1', host, counters: { insert_failed: 2 }, findings: [{ code, severity: 'warning', message: `${code} on ${host}` }] });
    const line = await run(['merge', '-o', 'line'], { input: `${doc('a', 'INSERT_FAILED')}\n${doc('b', 'INSERT_FAILED')}\n` });
    expect(line.exitCode).toBe(1);
    expect(line.stdout.trim()).toBe('INSERT_FAILED: 2 of 2 node(s) (a, b): INSERT_FAILED on a');
    const json = await run(['merge', '--json'], { input: doc('a', 'DROP') });
    expect((JSON.parse(json.stdout) as { findings: unknown[] }).findings).toEqual([{ code: 'DROP', severity: 'warning', message: '1 of 1 node(s) (a): DROP on a' }]);
  });
});
