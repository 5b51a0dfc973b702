/**
 * merge of watch documents: two nodes' captures merge to what watch says of one capture holding both. The reference is
 * watch itself on the two captures concatenated (mergecap), not a sum computed the way merge computes it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, run } from '../helpers/run.js';
import { TOOLS, gate, titled } from '../helpers/tools.js';

const wireshark = await gate({}, TOOLS.editcap, TOOLS.mergecap);
const tools = wireshark.ok;
if (!tools && process.env.CI) throw new Error('the merge-of-watch test needs editcap and mergecap (tshark)');
// Made in a hook its cleanup pairs: a file whose tests all skip leaves nothing behind.
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-mergewatch-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Endpoint { queries: number; unanswered: number; answeredAfterResend: number; raceSignature: number }
interface WatchDoc extends Endpoint { host: string; answered: number; inFlightAtEnd: number; pairs: number; histogram: unknown; total: { latencyMs: unknown }; byEndpoint: Record<string, Endpoint> }

async function watchJson(file: string): Promise<WatchDoc> {
  const r = await run(['watch', '--pcap', file, '-o', 'json'], { timeout: 60_000 });
  expect([0, 1], r.stderr).toContain(r.exitCode);
  return JSON.parse(r.stdout) as WatchDoc;
}

describe.skipIf(!tools)(titled('merge of watch documents', wireshark), () => {
  it("two nodes' captures merge to the counts, histogram and per-endpoint figures of one capture of both", async () => {
    const a = fixture('capture/glibc-sll2.pcap');
    // The second node: the same traffic an hour later, so no query of one meets an answer of the other.
    const b = join(dir, 'later.pcap');
    await execa('editcap', ['-t', '3600', a, b]);
    const both = join(dir, 'both.pcap');
    await execa('mergecap', ['-w', both, a, b]);
    const [da, db, whole] = [await watchJson(a), await watchJson(b), await watchJson(both)];
    db.host = 'node-b';
    const m = await run(['merge', '-o', 'json'], { input: `${JSON.stringify(da)}\n${JSON.stringify(db)}\n` });
    expect(m.stderr).toBe('');
    const g = (JSON.parse(m.stdout) as { groups: Array<{ schema: string; nodes: Array<{ host: string; stallRate: number }>; watch: Record<string, unknown> & { endpoints: Array<Endpoint & { endpoint: string; nodes: number }> } }> }).groups[0]!;
    expect(g.schema).toBe('k8sdiag.watch/1');
    expect(g.nodes.map((n) => n.host).sort()).toEqual([da.host, 'node-b'].sort());
    const w = g.watch;
    expect(whole.answeredAfterResend + whole.unanswered).toBeGreaterThan(0);
    for (const k of ['queries', 'answered', 'answeredAfterResend', 'raceSignature', 'pairs'] as const) expect([k, w[k]]).toEqual([k, whole[k]]);
    // The first capture ends with queries still within their timeout (in flight, not lost); in the one capture of both,
    // time goes on past their timeout and they are unanswered. Nothing else differs.
    expect(da.inFlightAtEnd).toBeGreaterThan(0);
    expect([w['unanswered'], w['inFlightAtEnd']]).toEqual([whole.unanswered - da.inFlightAtEnd, whole.inFlightAtEnd + da.inFlightAtEnd]);
    expect(w['histogram']).toEqual(whole.histogram);
    expect(w['latencyMs']).toEqual(whole.total.latencyMs);
    expect(w.endpoints.map((e) => e.endpoint).sort()).toEqual(Object.keys(whole.byEndpoint).sort());
    for (const e of w.endpoints) {
      const ref = whole.byEndpoint[e.endpoint]!;
      expect([e.endpoint, e.queries, e.answeredAfterResend, e.nodes]).toEqual([e.endpoint, ref.queries, ref.answeredAfterResend, 2]);
    }
    expect(w.endpoints.reduce((n, e) => n + e.unanswered, 0)).toBe(whole.unanswered - da.inFlightAtEnd);
    // Each node's stall rate: its queries that waited the timeout, over its queries.
    const stall = (d: WatchDoc): number => Number(((d.unanswered + d.answeredAfterResend) / d.queries).toFixed(6));
    expect(g.nodes.find((n) => n.host === 'node-b')!.stallRate).toBe(stall(db));
    const human = await run(['merge'], { input: `${JSON.stringify(da)}\n${JSON.stringify(db)}\n` });
    expect(human.stdout).toContain(`real queries: ${whole.queries.toLocaleString('en-US')}`);
  }, 120_000);

  it('a watch document with a count that is not one is skipped with its reason; the others merge', async () => {
    const d = await watchJson(fixture('capture/glibc-sll2.pcap'));
    const bad = { ...d, host: 'node-x', unanswered: -1 };
    const m = await run(['merge', '-o', 'json'], { input: `${JSON.stringify(d)}\n${JSON.stringify(bad)}\n` });
    expect(m.stderr).toMatch(/k8sdiag\.watch\/1 document from node-x that cannot be merged: unanswered is not a count/);
    const g = (JSON.parse(m.stdout) as { groups: Array<{ documents: number; watch: { queries: number } }> }).groups[0]!;
    expect([g.documents, g.watch.queries]).toEqual([1, d.queries]);
  }, 60_000);
});
