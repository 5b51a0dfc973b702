/**
 * The document splitter as a stream: the same documents and the same junk whatever the chunks the text arrives in,
 * and memory bounded by the document being read.
 */
import { describe, expect, it } from 'vitest';
import { DocumentSplitter, splitDocuments } from '../../src/documents.js';
import { mulberry32 } from '../../src/stats/index.js';
import { run } from '../helpers/run.js';

/** The text fed in chunks of random lengths (1 to `most` characters). */
function inChunks(text: string, most: number, seed: number, maxDocument?: number): { docs: unknown[]; garbage: string[] } {
  const docs: unknown[] = [];
  const garbage: string[] = [];
  const s = new DocumentSplitter({ onDocument: (d) => docs.push(d), onJunk: (g) => garbage.push(g), maxDocument });
  const rand = mulberry32(seed);
  for (let i = 0; i < text.length; ) {
    const n = 1 + Math.floor(rand() * most);
    s.feed(text.slice(i, i + n));
    i += n;
  }
  s.end();
  return { docs, garbage };
}

const doc = (host: string, extra: Record<string, unknown> = {}) => ({ schema: 'k8sdiag.conntrack/1', host, counters: { drop: host.length }, note: 'a "quoted" {brace} and \\ backslash', ...extra });

describe('the document splitter, streamed', () => {
  // Every shape merge reads, with junk between: what each document is, is known here, not taken from the splitter.
  const shapes: Array<[string, unknown[]]> = [
    [JSON.stringify(doc('compact')), [doc('compact')]],
    [JSON.stringify(doc('pretty'), null, 2), [doc('pretty')]],
    [JSON.stringify(doc('prefixed'), null, 2).split('\n').map((l) => `[pod/k8sdiag-x/k8sdiag] ${l}`).join('\n'), [doc('prefixed')]],
    [`${JSON.stringify(doc('c1'))}${JSON.stringify(doc('c2'))}  ${JSON.stringify(doc('c3'), null, 1)}`, [doc('c1'), doc('c2'), doc('c3')]],
    // Indented, but the object closes mid-line: not JSON.stringify's shape, found by the brace scan.
    [`{\n  "schema": "k8sdiag.conntrack/1", "host": "mid", "counters": {"drop": 3}, "note": "a \\"quoted\\" {brace} and \\\\ backslash"}\n  ${JSON.stringify(doc('after-mid'))}`, [doc('mid'), doc('after-mid')]],
    ['level=error msg="lookup failed" ctx={ not json', []],
    ['{"schema":"k8sdiag.conntrack/1","host":"cut-off","counters":{"drop', []],
    ['{ "stray": brace }', []],
    ['', []],
    ['\r', []],
  ];

  it('every chunking gives the documents of the whole text, in order', () => {
    const rand = mulberry32(7);
    for (let round = 0; round < 40; round++) {
      const picked = Array.from({ length: 12 }, () => shapes[Math.floor(rand() * shapes.length)]!);
      const text = picked.map(([t]) => t).join(rand() < 0.5 ? '\n' : '\r\n');
      const expected = picked.flatMap(([, d]) => d);
      const whole = splitDocuments(text);
      expect(whole.docs, text).toEqual(expected);
      for (const most of [1, 3, 17, 4096]) expect(inChunks(text, most, round * 10 + most)).toEqual(whole);
    }
  });

  it('an indented object that closes mid-line is found although no line is a lone `}`', () => {
    const text = `{\n  "schema": "k8sdiag.conntrack/1",\n  "host": "x", "counters": {}}\n  ${JSON.stringify(doc('y'))}\n`;
    expect(inChunks(text, 5, 1).docs).toEqual([{ schema: 'k8sdiag.conntrack/1', host: 'x', counters: {} }, doc('y')]);
  });

  it('an object longer than the cap is junk, and the documents after it are read', () => {
    const big = JSON.stringify({ schema: 'k8sdiag.conntrack/1', host: 'big', counters: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`c${i}`, i])) }, null, 2);
    expect(big.length).toBeGreaterThan(2000);
    const text = `${big}\n${JSON.stringify(doc('small'))}\n`;
    const { docs, garbage } = inChunks(text, 64, 3, 1024);
    expect(docs).toEqual([doc('small')]);
    expect(garbage[0]).toBe('an object of more than 0 MiB: read as junk');
    expect(garbage[1]).toMatch(/^"\{" and the \d+ lines after it/);
  });

  it('a line longer than the cap is skipped to its end, unread, and the next line is read', () => {
    const text = `{"schema":"k8sdiag.conntrack/1","host":"long","pad":"${'x'.repeat(5000)}"}\n${JSON.stringify(doc('next'))}\n`;
    const { docs, garbage } = inChunks(text, 100, 4, 1024);
    expect(docs).toEqual([doc('next')]);
    expect(garbage).toEqual(['a line of more than 0 MiB: skipped to its end']);
  });

  it('the CLI merges several files and stdin as streams, each document once', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-merge-'));
    try {
      const conntrack = (host: string, drop: number) => ({ schema: 'k8sdiag.conntrack/1', host, startedAt: '2026-01-01T00:00:00Z', counters: { drop }, findings: [] });
      // 3 MiB of pretty documents in one file: read in many chunks.
      const many = Array.from({ length: 3000 }, (_, i) => JSON.stringify(conntrack(`n${i}`, 1), null, 2)).join('\n');
      writeFileSync(join(dir, 'a.json'), many);
      writeFileSync(join(dir, 'b.json'), JSON.stringify(conntrack('b', 10)));
      const r = await run(['merge', '--json', join(dir, 'a.json'), '-', join(dir, 'b.json')], { input: JSON.stringify(conntrack('stdin', 100)) });
      expect(r.exitCode, r.stderr).toBe(0);
      const m = JSON.parse(r.stdout) as { sources: string[]; groups: Array<{ documents: number; conntrack: { counters: { drop: number } } }> };
      expect(m.sources).toEqual([join(dir, 'a.json'), 'stdin', join(dir, 'b.json')]);
      expect(m.groups[0]!.documents).toBe(3002);
      expect(m.groups[0]!.conntrack.counters.drop).toBe(3000 + 100 + 10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
