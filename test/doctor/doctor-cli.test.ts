/** doctor end to end on loopback: healthy, unreachable, several names, what it could not do. */
import { describe, expect, it } from 'vitest';
import { parseFault } from '../../src/dns/responder.js';
import { startResponder } from '../helpers/responders.js';
import { closedUdpPort } from '../helpers/servers.js';
import { run } from '../helpers/run.js';

describe('k8sdiag doctor on loopback', () => {
  it('a healthy server: exit 0, the plan said before sending, what it could not read said', async () => {
    const r = await startResponder();
    const res = await run(['doctor', '--json', '--resolv', '-', '-p', String(r.udpPort), '--name', 'a.example', '--name', 'b.example', '--budget', '5'], { input: 'nameserver 127.0.0.1\noptions ndots:1 timeout:1\n' });
    expect(res.exitCode, res.stdout).toBe(0);
    expect(res.stderr).toMatch(/^doctor: will send .*lookups of a\.example, b\.example/m);
    const doc = JSON.parse(res.stdout);
    expect(doc).toMatchObject({ schema: 'k8sdiag.doctor/1', command: 'doctor', couldNotRun: null });
    expect(doc.verdict).toEqual(['No cause of DNS stalls found: every probe was answered in time.']);
    expect(doc.probes.map((p: { label: string }) => p.label)).toHaveLength(5);
    expect(new Set(r.seen.map((q) => q.name.replace(/\.$/, '')))).toEqual(new Set(['a.example', 'b.example']));
    expect(doc.steps.find((s: { step: string }) => s.step === 'path')).toMatchObject({ ok: false });
  });

  it('a budget too short for every probe: those it left out are named, and the run ends within the bound its plan gave', async () => {
    // Every AAAA dropped: glibc-default and single-request-reopen lookups each wait out timeout x attempts (2 s).
    const r = await startResponder({ faults: [parseFault('drop@type=AAAA')] });
    const t = performance.now();
    const res = await run(['doctor', '--json', '--resolv', '-', '-p', String(r.udpPort), '--name', 'a.example', '--budget', '1'], { input: 'nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:2\n' });
    const tookS = (performance.now() - t) / 1000;
    const doc = JSON.parse(res.stdout);
    // a.example is one candidate: (1 + the name as written again) x attempts x timeout = 4 s at most per lookup.
    expect(doc.plan).toMatch(/new probes for at most 1 s, then up to 4 s for lookups in flight/);
    const left = doc.steps.find((s: { step: string; ok: boolean }) => s.step === 'probes' && !s.ok);
    expect(left?.note).toMatch(/^not run, the budget \(1 s\) spent: .*lookups over TCP \(use-vc\)/);
    expect(doc.probes.map((p: { label: string }) => p.label)).not.toContain('lookups over TCP (use-vc)');
    // The stalls it did measure are not explained without the TCP probe, and it says so: exit 1, not "healthy".
    expect(doc.verdict[0]).toMatch(/^STALLS_UNEXPLAINED: /);
    expect(res.exitCode).toBe(1);
    // Node's start-up and the context steps come on top of the probes' 1 + 4 s.
    expect(tookS).toBeLessThan(1 + 4 + 3);
  });

  it('the human report says whose conntrack counters it read: a pod\'s own are not the node\'s', async () => {
    const r = await startResponder();
    const args = ['doctor', '--resolv', '-', '-p', String(r.udpPort), '--budget', '5'];
    const input = 'nameserver 127.0.0.1\noptions ndots:1 timeout:1\n';
    const doc = JSON.parse((await run([...args, '--json'], { input })).stdout);
    const human = await run([...args, '--no-color'], { input });
    const line = human.stdout.split('\n').find((l) => l.startsWith('conntrack during the probes'));
    if (doc.conntrack === null) return expect(line).toBeUndefined();
    const whose = { node: '', pod: " (this pod's namespace: not the node's, where its Service traffic is NATed)", unknown: ' (this namespace)' }[doc.context.view as string];
    expect(line).toMatch(new RegExp(`^conntrack during the probes${(whose ?? 'x').replace(/[()]/g, '\\$&')}: `));
  });

  it('options attempts:0: every lookup fails without a query, and the verdict names the option, not "no stalls"', async () => {
    const r = await startResponder();
    const res = await run(['doctor', '--json', '--resolv', '-', '-p', String(r.udpPort), '--budget', '5'], { input: 'nameserver 127.0.0.1\noptions ndots:1 attempts:0\n' });
    const doc = JSON.parse(res.stdout);
    expect(res.exitCode).toBe(1);
    expect(doc.verdict[0]).toMatch(/^LOOKUPS_DISABLED: an option that stops every lookup -> remove attempts:0/);
    // The lookups sent nothing; the raw queries (no resolver) were answered.
    const lookups = doc.probes.filter((p: { kind: string }) => p.kind === 'lookups');
    expect(lookups.map((p: { sent: number }) => p.sent)).toEqual(lookups.map(() => 0));
  });

  it('nothing listening: one line saying so, exit 2', async () => {
    const port = await closedUdpPort();
    const res = await run(['doctor', '--resolv', '-', '-p', String(port), '--budget', '5'], { input: 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' });
    expect(res.exitCode).toBe(2);
    expect(res.stderr.trim().split('\n').at(-1)).toMatch(/^k8sdiag: no probe got an answer from 127\.0\.0\.1/);
  });
});
