/**
 * doctor's decision judged as a diagnostic test: run over thousands of simulated worlds whose causes are known
 * (./worlds.ts, ./simulate.ts), the share of runs that name the right cause, a wrong one, loss with no mechanism,
 * inconclusive, or nothing. The bars, per world:
 * - nothing lost (busy counters, unrelated traffic): no cause in at least 99.5% of runs;
 * - loss at or under the 1% background: no cause in at least 95%, a mechanism in at most 0.5%;
 * - loss with no mechanism: the loss named in at least 95%, a mechanism in at most 0.5%, inconclusive in at most 5%;
 * - a cause: named in at least 95% (or the world's own stated share), a cause it does not have in at most 0.5%.
 * The matrix in docs/doctor.md is this test's output: `K8SDIAG_WRITE_MATRIX=1 npx vitest run test/doctor/confusion.test.ts`
 * writes it, and this test fails when the document and the program disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runWorld } from './simulate.js';
import { outcomeOf } from './outcome.js';
import type { World } from './simulate.js';
import type { Outcome } from './outcome.js';
import { WORLDS } from './worlds.js';

const SEEDS = 2000;

function tallyWorld(w: World): Record<Outcome, number> {
  const t: Record<Outcome, number> = { right: 0, wrong: 0, loss: 0, inconclusive: 0, none: 0 };
  for (let seed = 1; seed <= SEEDS; seed++) t[outcomeOf(w.truth, runWorld(w, seed))]++;
  return t;
}

const results = WORLDS.map((w) => ({ w, t: tallyWorld(w) }));
const share = (n: number): number => n / SEEDS;
const pct = (n: number): string => (n === 0 ? '0' : `${((100 * n) / SEEDS).toFixed(n * 1000 < SEEDS ? 2 : 1)}%`);

function matrix(): string {
  const what: Record<World['truth']['kind'], string> = { none: 'nothing lost', background: 'loss within the background', loss: 'loss, no mechanism', cause: 'cause', ambiguous: 'cause the probes cannot tell apart' };
  const truthOf = (w: World): string => (w.truth.kind === 'cause' || w.truth.kind === 'ambiguous' ? `${what[w.truth.kind]}: ${w.truth.codes.join(' or ')}` : what[w.truth.kind]);
  const lines = [
    `| world | holds | right cause | loss named | no cause | inconclusive | a cause it does not have |`,
    `|---|---|---|---|---|---|---|`,
    ...results.map(({ w, t }) => `| ${w.name} | ${truthOf(w)} | ${w.truth.kind === 'cause' || w.truth.kind === 'ambiguous' ? pct(t.right) : '-'} | ${pct(t.loss)} | ${pct(t.none)} | ${pct(t.inconclusive)} | ${pct(t.wrong)} |`),
  ];
  return `${SEEDS} seeded runs per world at the default budget (30 s of the plan's time model).\n\n${lines.join('\n')}\n`;
}

describe('the confusion matrix', () => {
  for (const { w, t } of results) {
    it(`${w.name}`, () => {
      const said = JSON.stringify(t);
      expect(share(t.wrong), said).toBeLessThanOrEqual(0.005);
      if (w.truth.kind === 'none') expect(share(t.none), said).toBeGreaterThanOrEqual(0.995);
      if (w.truth.kind === 'background') expect(share(t.none), said).toBeGreaterThanOrEqual(0.95);
      if (w.truth.kind === 'loss') {
        expect(share(t.loss), said).toBeGreaterThanOrEqual(0.95);
        expect(share(t.inconclusive), said).toBeLessThanOrEqual(0.05);
      }
      if (w.truth.kind === 'cause' || w.truth.kind === 'ambiguous') expect(share(t.right), said).toBeGreaterThanOrEqual(w.minRight ?? 0.95);
    });
  }

  it('is the one docs/doctor.md gives', () => {
    const doc = new URL('../../docs/doctor.md', import.meta.url);
    const text = readFileSync(doc, 'utf8');
    const begin = '<!-- confusion matrix: begin -->\n';
    const end = '<!-- confusion matrix: end -->';
    const at = text.indexOf(begin);
    const to = text.indexOf(end);
    expect(at, 'docs/doctor.md has the matrix markers').toBeGreaterThan(0);
    if (process.env.K8SDIAG_WRITE_MATRIX === '1') writeFileSync(doc, text.slice(0, at + begin.length) + matrix() + text.slice(to));
    else expect(text.slice(at + begin.length, to)).toBe(matrix());
  });
});
