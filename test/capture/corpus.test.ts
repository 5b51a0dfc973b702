/**
 * watch against tshark on captures nobody here wrote: the test and example captures that Debian's packages ship
 * (scripts/corpus.sh unpacks them into .corpus/; .ci/run runs it). For every capture, watch's packet count is
 * capinfos' (pcap, pcapng of either byte order with several sections and interfaces, simple packet blocks, custom
 * blocks, gzip); for every capture with DNS in it, the queries, answers, rcodes and latency percentiles are tshark's,
 * computed here from tshark's own pairing (two passes: `dns.response_in`, `dns.time`) with a plain sorted array.
 * Where watch reads a capture otherwise, the difference is listed below with its reason, and held to exactly that.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import pLimit from 'p-limit';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { TOOLS, gate, titled } from '../helpers/tools.js';

const CORPUS = fileURLToPath(new URL('../../.corpus', import.meta.url));
const here = existsSync(join(CORPUS, 'SOURCES'));
if (!here && process.env.CI) throw new Error('.corpus/ is missing: .ci/run runs scripts/corpus.sh before the tests');
const tools = await gate({}, TOOLS.tshark);
const g = here ? tools : { ok: false, why: 'skipped: no .corpus/ (scripts/corpus.sh fetches the captures)' };

function captures(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...captures(p));
    else if (/\.(pcap|pcapng|pcap\.gz)$/.test(e)) out.push(p);
  }
  return out.sort();
}
const FILES = captures(CORPUS);
const name = (f: string): string => relative(CORPUS, f);

interface Counts {
  queries: number;
  answered: number;
  rcodes: Record<string, number>;
  /** Answered queries' latency, ms: nearest-rank p50 and p90 of the sorted values, and the largest. */
  p50: number | null;
  p90: number | null;
  max: number | null;
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** tshark's reading: DNS messages outside ICMP errors (which quote a query, not send one), paired by tshark itself. */
async function tshark(file: string): Promise<Counts> {
  const r = await execa('tshark', ['-2', '-n', '-r', file, '-Y', 'dns && !icmp && !icmpv6', '-T', 'fields', '-E', 'aggregator=|', '-e', 'dns.flags.response', '-e', 'dns.flags.rcode', '-e', 'dns.time', '-e', 'dns.response_in'], { reject: false });
  const c: Counts = { queries: 0, answered: 0, rcodes: {}, p50: null, p90: null, max: null };
  const ms: number[] = [];
  for (const line of String(r.stdout).split('\n')) {
    if (line === '') continue;
    const [resp, rcode, time, answeredIn] = line.split('\t').map((x) => x.split('|')) as [string[], string[], string[], string[]];
    resp.forEach((isResponse, k) => {
      if (isResponse === '0') {
        c.queries++;
        if ((answeredIn[k] ?? '') !== '') c.answered++;
      } else if ((time[k] ?? '') !== '') {
        // An answer tshark paired with its query: its rcode and its latency.
        const n = RCODES[Number(rcode[k])] ?? `RCODE${rcode[k]}`;
        c.rcodes[n] = (c.rcodes[n] ?? 0) + 1;
        ms.push(Number(time[k]) * 1000);
      }
    });
  }
  ms.sort((a, b) => a - b);
  const rank = (p: number): number | null => (ms.length === 0 ? null : ms[Math.max(0, Math.ceil((p / 100) * ms.length) - 1)]!);
  return { ...c, p50: rank(50), p90: rank(90), max: ms.length === 0 ? null : ms[ms.length - 1]! };
}

/** capinfos' packet count (custom blocks are records, not packets); tshark's frames up to where it stopped otherwise. */
async function packets(file: string): Promise<number> {
  const r = await execa('capinfos', ['-M', '-c', file], { reject: false });
  const m = /Number of packets:\s+(\d+)/.exec(String(r.stdout));
  if (r.exitCode === 0 && m) return Number(m[1]);
  const t = await execa('tshark', ['-n', '-r', file, '-T', 'fields', '-e', 'frame.number'], { reject: false });
  return String(t.stdout).split('\n').filter((l) => l !== '').length;
}

interface WatchDoc {
  queries: number;
  answered: number;
  total: { rcodes: Record<string, number>; latencyMs: { p50: number; p90: number; max: number } | null };
  capture: { packets: number; damaged: string | null; compression: string | null };
}

/**
 * Where watch reads a capture otherwise than tshark, by file name: the reason, and what watch gives instead (applied to
 * tshark's counts). Nothing else may differ.
 */
const DIFFERENCES: Record<string, { why: string; watch: (t: Counts) => Counts }> = {
  'nb6-http.pcap': {
    why:
      'one query sent from one port to two servers 0.25 ms apart (two nameservers asked at once): one query, as the two ' +
      'sightings of one packet before and after DNAT are, answered by the first answer; tshark pairs both sends, and ' +
      "the second server's answer (225 ms) is a latency of its own",
    watch: (t) => ({ ...t, queries: t.queries - 1, answered: t.answered - 1, rcodes: { NOERROR: (t.rcodes['NOERROR'] ?? 0) - 1 }, p90: 153.808, max: 153.808 }),
  },
};

/** Within the histogram's precision: 1/128 of the value (log-linear, 128 sub-buckets), and a microsecond. */
const near = (w: number | null | undefined, t: number | null): boolean => (w ?? null) === null ? t === null : t !== null && Math.abs(w! - t) <= t / 128 + 0.001;

describe('watch reads third-party captures as tshark does', () => {
  it.skipIf(!g.ok)(titled('every capture: the same packet count as capinfos, never a crash, a hang or a stack trace', g), async () => {
    expect(FILES.length).toBeGreaterThanOrEqual(100);
    const limit = pLimit(4);
    const seen = await Promise.all(
      FILES.map((f) =>
        limit(async () => {
          const [r, want] = await Promise.all([run(['watch', '--pcap', f, '--json'], { timeout: 30_000 }), packets(f)]);
          expect(r.stderr, name(f)).not.toMatch(/\n\s+at /);
          expect([0, 1, 2], name(f)).toContain(r.exitCode);
          if (r.exitCode !== 2) {
            const doc = JSON.parse(r.stdout) as WatchDoc;
            expect(doc.capture.packets, name(f)).toBe(want);
            if (f.endsWith('.gz')) expect(doc.capture.compression, name(f)).toBe('gzip');
            return 'read';
          }
          // Not a capture at all (tshark reads no packet either), or no DNS: one line that says how many packets it
          // held and why none counted.
          if (/not a pcap or pcapng capture/.test(r.stderr)) {
            expect(want, name(f)).toBe(0);
            return 'refused';
          }
          const m = /: (?:(\d+) packets, none DNS|no packets)/.exec(r.stderr);
          expect(m, `${name(f)}: ${r.stderr}`).not.toBeNull();
          expect(Number(m![1] ?? 0), name(f)).toBe(want);
          return 'no-dns';
        }),
      ),
    );
    const read = seen.filter((s) => s === 'read').length;
    expect(read).toBeGreaterThanOrEqual(15);
  }, 240_000);

  it.skipIf(!g.ok)(titled('every capture with DNS: queries, answered, rcodes and latency p50/p90/max as tshark pairs them, each difference stated', g), async () => {
    let withDns = 0;
    let queries = 0;
    const differed: string[] = [];
    const limit = pLimit(4);
    const read = await Promise.all(
      FILES.map((f) =>
        limit(async () => {
          const t = await tshark(f);
          if (t.queries === 0 && Object.keys(t.rcodes).length === 0) return undefined;
          return { f, t, r: await run(['watch', '--pcap', f, '--json'], { timeout: 30_000 }) };
        }),
      ),
    );
    for (const x of read) {
      if (x === undefined) continue;
      const { f, t, r } = x;
      expect(r.stdout, `${name(f)}: ${r.stderr}`).not.toBe('');
      const doc = JSON.parse(r.stdout) as WatchDoc;
      const base = f.split('/').pop()!;
      const d = DIFFERENCES[base];
      if (d !== undefined) differed.push(base);
      const want = d !== undefined ? d.watch(t) : t;
      const l = doc.total.latencyMs;
      const got = { queries: doc.queries, answered: doc.answered, rcodes: doc.total.rcodes };
      expect(got, name(f)).toEqual({ queries: want.queries, answered: want.answered, rcodes: want.rcodes });
      expect(near(l?.p50, want.p50), `${name(f)} p50 ${l?.p50} vs ${want.p50}`).toBe(true);
      expect(near(l?.p90, want.p90), `${name(f)} p90 ${l?.p90} vs ${want.p90}`).toBe(true);
      expect(near(l?.max, want.max), `${name(f)} max ${l?.max} vs ${want.max}`).toBe(true);
      withDns++;
      queries += t.queries;
    }
    // The corpus is what it should be: enough captures and lookups that agreeing means something.
    expect(withDns).toBeGreaterThanOrEqual(18);
    expect(queries).toBeGreaterThanOrEqual(230);
    // Every listed difference was met (a difference that no longer occurs is taken out of the list).
    expect(differed.sort()).toEqual(Object.keys(DIFFERENCES).sort());
  }, 240_000);
});
