/**
 * doctor's rules, third part: conntrack's own counters in doctor's namespace (insert_failed, drop, early_drop). Each
 * is a cause only where it rose beyond its own background (./background.ts: at least 3, and the exact test of two
 * rates against the same counter over the interval before the probes, p < 0.001) while the probes lost beyond chance;
 * a rise that its background explains, that has no background read to test it against (a pod's namespace), or beside
 * probes that lost nothing, is said as a note and names nothing.
 */
import type { Finding } from '../findings.js';
import { finding } from '../findings.js';
import { RACE, TABLE_FULL } from '../remedies.js';
import { readCounter } from './background.js';
import type { CounterEvidence } from './background.js';
import type { Rule } from './rule-kit.js';
import { probesAffected } from './rule-kit.js';

const MEANS = {
  insert_failed: "packets lost the conntrack insert race: two packets of one new flow racing to create its entry; for DNS, glibc's A and AAAA queries sent at once from one socket",
  drop: 'packets dropped because no conntrack entry could be created (table full or allocation failure)',
  early_drop: 'entries evicted from a full table to make room',
} as const;

type CounterCode = 'INSERT_FAILED' | 'DROP' | 'EARLY_DROP';

function counterFinding(e: CounterEvidence, code: CounterCode, affected: boolean): Finding | undefined {
  if (e.during === 0) return undefined;
  const r = readCounter(e);
  const rose = r.verdict === 'rose' && affected;
  const why = rose
    ? ''
    : r.verdict === 'rose'
      ? "beyond this namespace's own background, while doctor's probes lost nothing beyond chance: other traffic here, not a cause of the probes' stalls (`k8sdiag watch` shows the pods' own); "
      : 'not beyond what this namespace shows without the probes, so not named as a cause; ';
  const message = `${r.said}: ${why}${MEANS[e.name as keyof typeof MEANS]}`;
  const watch = { watchSeconds: Number(e.seconds.toFixed(3)) };
  const rate = e.seconds > 0 ? Number((e.during / e.seconds).toFixed(3)) : null;
  const severity = rose ? 'critical' : 'info';
  if (code === 'INSERT_FAILED') return finding({ code: 'INSERT_FAILED', severity, subject: { kind: 'counter', name: 'insert_failed' }, message, evidence: { insert_failed: e.during, insert_failedDelta: e.during, insert_failedPerSecond: rate, ...watch }, remedy: RACE });
  if (code === 'DROP') return finding({ code: 'DROP', severity, subject: { kind: 'counter', name: 'drop' }, message, evidence: { drop: e.during, dropDelta: e.during, dropPerSecond: rate, ...watch }, remedy: TABLE_FULL });
  return finding({
    code: 'EARLY_DROP', severity, subject: { kind: 'counter', name: 'early_drop' }, message, evidence: { early_drop: e.during, early_dropDelta: e.during, early_dropPerSecond: rate, ...watch },
    remedy: 'raise net.netfilter.nf_conntrack_max; UDP DNS entries live nf_conntrack_udp_timeout (30 s) each, so bursts of lookups fill the table: shorten it or use NodeLocalDNS',
  });
}

export const COUNTER_RULES: readonly Rule[] = (
  [['INSERT_FAILED', 'insert_failed'], ['DROP', 'drop'], ['EARLY_DROP', 'early_drop']] as const
).map(([code, name]): Rule => ({
  codes: [code],
  from: 'doctor',
  decide: (ev) => {
    const e = (ev.a.conntrack ?? []).find((c) => c.name === name);
    const f = e === undefined ? undefined : counterFinding(e, code, probesAffected(ev));
    return f === undefined ? undefined : { findings: [f] };
  },
}));
