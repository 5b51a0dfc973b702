/**
 * The cloud interface's allowance counters: parsed from ENA's `ethtool -S` layout, and read for real from a veth in a
 * namespace, whose driver has none of them (the path every non-ENA node takes).
 */
import type { ProbeSummary } from '../../src/doctor/probes.js';
import { describe, expect, it } from 'vitest';
import { nicDeltas, parseEthtoolStats } from '../../src/host/nic.js';
import type { NicReading } from '../../src/host/nic.js';
import { attribute } from '../../src/doctor/rules.js';
import { readFixture, BIN } from '../helpers/run.js';
import { netnsGate, netnsPerTest } from '../helpers/netns.js';
import { TOOLS, titled } from '../helpers/tools.js';

const reading = (file: string): NicReading => {
  const all = parseEthtoolStats(readFixture(file));
  const counters = Object.fromEntries(Object.entries(all).filter(([k]) => k.endsWith('_allowance_exceeded')));
  return { samples: [{ iface: 'ens5', counters }], unavailable: [] };
};

describe('ethtool -S', () => {
  it('reads every counter of an ENA dump, the allowance counters among them', () => {
    const all = parseEthtoolStats(readFixture('nic/ethtool-S-ena-before.txt'));
    expect(all).toMatchObject({ linklocal_allowance_exceeded: 1184, pps_allowance_exceeded: 0, queue_0_tx_cnt: 4871236, ena_admin_q_submitted_cmd: 98 });
    expect(Object.keys(all)).toHaveLength(51);
    expect(parseEthtoolStats('garbage\n\x00\x01: x\nname: -3\n')).toEqual({});
  });

  it('what rose between two dumps, and the finding it makes beside lost queries', () => {
    const d = nicDeltas(reading('nic/ethtool-S-ena-before.txt'), reading('nic/ethtool-S-ena-after.txt'));
    expect(d).toEqual([
      { iface: 'ens5', counter: 'pps_allowance_exceeded', delta: 12 },
      { iface: 'ens5', counter: 'linklocal_allowance_exceeded', delta: 207 },
    ]);
    const lost: ProbeSummary = { label: 'raw A', kind: 'raw', mode: null, qtype: 'A', target: '10.96.0.10:53', sent: 100, answered: 70, timeouts: 30, errors: 0, errorCodes: {}, rcodes: {}, late: 0, units: 100, stalled: 30, failed: 0, over1s: 0, over5s: 0, localDrops: 0, meanMs: 1, medianMs: 1, queriesPerUnit: 1, datagramsPerUnit: 2, singleRequestSwitches: 0, servfailed: 0, rate: 900, paced: false, rounds: 1, byRound: [{ units: 100, stalled: 30 }] };
    const f = attribute({ probes: [lost], service: null, libc: 'glibc', clashFixes: [], insertFailed: null, conntrack: null, nodeLocalDNS: false, name: 'google.com', ndots: undefined, nic: d.map((x) => ({ ...x, name: `${x.iface} ${x.counter}`, during: x.delta, seconds: 10, baseline: 0, baselineSeconds: 10 })), coredns: null, final: true }).findings;
    expect(f.map((x) => x.code)).toEqual(['NIC_ALLOWANCE_EXCEEDED']);
    expect(f[0]).toMatchObject({ severity: 'critical', evidence: { linklocal: 207 } });
    expect(f[0]!.remedy).toMatch(/NodeLocalDNS/);
    // 2 is under the minimum count: said as a note, no cause.
    expect(attribute({ probes: [lost], service: null, libc: 'glibc', clashFixes: [], insertFailed: null, conntrack: null, nodeLocalDNS: false, name: 'x', ndots: undefined, nic: [{ iface: 'ens5', counter: 'pps_allowance_exceeded', name: 'ens5 pps_allowance_exceeded', during: 2, seconds: 10, baseline: 0, baselineSeconds: 10 }], coredns: null, final: true }).findings.find((x) => x.code === 'NIC_ALLOWANCE_EXCEEDED')?.severity).toBe('info');
  });
});

const lab = await netnsGate(TOOLS.ethtool);
const usable = lab.ok;
const hasEthtool = usable;
if (!hasEthtool && process.env.CI) throw new Error('ethtool is missing (.ci/run installs it)');
describe.skipIf(!usable || !hasEthtool)(titled('a node whose interface has no allowance counters', lab), () => {
  const netns = netnsPerTest();
  it('doctor says so in its steps (a veth: ethtool -S works, no such counters)', async () => {
    const ns = await netns('nic');
    // The host side of a pod's veth makes this namespace a node's; the default route makes that veth the one read.
    for (const args of [['link', 'add', 'vethk8snic0', 'type', 'veth', 'peer', 'name', 'k8snicpeer0'], ['addr', 'add', '198.18.10.1/30', 'dev', 'vethk8snic0'], ['link', 'set', 'vethk8snic0', 'up'], ['link', 'set', 'k8snicpeer0', 'up'], ['route', 'add', 'default', 'via', '198.18.10.2']]) {
      const r = await ns.exec('ip', args);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const { serveIn } = await import('../helpers/netns.js');
    const server = await serveIn(ns.name, ['--host', '127.0.0.1', '--port', '5353', '--duration', '60']);
    try {
      const r = await ns.exec(process.execPath, [BIN, 'doctor', '--json', '--resolv', '-', '-p', '5353', '--budget', '2'], { input: 'nameserver 127.0.0.1\noptions ndots:1 timeout:1\n', timeout: 60_000 });
      const doc = JSON.parse(r.stdout) as { context: { view: string }; steps: Array<{ step: string; ok: boolean; note: string }> };
      expect(doc.context.view).toBe('node');
      const step = doc.steps.find((s) => s.step === 'nic');
      expect(step).toMatchObject({ ok: false });
      expect(step!.note).toMatch(/vethk8snic0: no allowance counters \(its driver does not count them; AWS ENA does\)/);
    } finally {
      server.kill('SIGTERM');
    }
  }, 90_000);
});
