/**
 * Per-CPU counters are 32-bit in the kernel: a delta is taken per CPU, with the wrap, then summed. The expected
 * figures are worked out by hand from the hex rows below.
 */
import { describe, expect, it } from 'vitest';
import { buildView } from '../../src/conntrack/analyse.js';
import { parseConntrackInput } from '../../src/conntrack/parse.js';
import { counterDeltas } from '../../src/commands/conntrack.js';
import { deltaPerCpu } from '../../src/stats/index.js';

const HEAD = 'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n';
const row = (found: string, insertFailed: string) => `00000010  00000000 ${found} 00000000 00000000 00000000 00000000 00000000 00000000 ${insertFailed} 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n`;
const view = (text: string) => buildView(parseConntrackInput(text, new Date()));

describe('per-CPU deltas', () => {
  it('one CPU wrapping past 2^32: found rises by 21 (11 across the wrap on CPU 0, 10 on CPU 1), not a reset', () => {
    // CPU 0: 0xfffffffa -> 0x00000005 is 6 to reach 2^32, then 5: 11. CPU 1: 0x10 -> 0x1a is 10.
    const before = view(HEAD + row('fffffffa', '00000003') + row('00000010', '00000000'));
    const after = view(HEAD + row('00000005', '00000003') + row('0000001a', '00000002'));
    const d = counterDeltas(before, after, 2);
    expect(d['found']).toMatchObject({ delta: 21, reset: false, wrapped: true, perSecond: 10.5 });
    expect(d['insert_failed']).toMatchObject({ delta: 2, reset: false });
    expect(d['insert_failed']!.wrapped).toBeUndefined();
  });

  it('a counter that fell by more than half the range was reset (a reboot, a new namespace): its new value is the delta', () => {
    const d = deltaPerCpu([{ found: 1000 }], [{ found: 7 }], null)!;
    expect(d.deltas['found']).toMatchObject({ delta: 7, reset: true, perSecond: null });
  });

  it('different CPU counts do not line up: null, and the totals are used', () => {
    expect(deltaPerCpu([{ found: 1 }], [{ found: 1 }, { found: 2 }], 1)).toBeNull();
    const before = view(HEAD + row('00000001', '00000000'));
    const after = view(HEAD + row('00000004', '00000000') + row('00000002', '00000000'));
    expect(counterDeltas(before, after, 1)['found']).toMatchObject({ delta: 5, reset: false });
  });
});

describe('two snapshots in one input (`conntrack -S; sleep 10; conntrack -S | k8sdiag conntrack`)', () => {
  it('per CPU with the wrap: cpu0 4294967290 -> 10 and cpu1 100 -> 105 is +21, not "115 (reset)"', async () => {
    const { run } = await import('../helpers/run.js');
    const snap = (c0: number, c1: number) =>
      `cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=${c0} drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 \n` +
      `cpu=1   \tfound=0 invalid=0 insert=0 insert_failed=${c1} drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 \n`;
    const r = await run(['conntrack', '--json'], { input: snap(4294967290, 100) + snap(10, 105) });
    const doc = JSON.parse(r.stdout) as { watch: { deltas: Record<string, { delta: number; reset: boolean }> } };
    expect(doc.watch.deltas['insert_failed']).toMatchObject({ delta: 21, reset: false });
  });
});
