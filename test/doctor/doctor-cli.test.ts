/** doctor end to end on loopback: healthy, unreachable, several names, what it could not do. */
import { describe, expect, it } from 'vitest';
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

  it('nothing listening: one line saying so, exit 2', async () => {
    const port = await closedUdpPort();
    const res = await run(['doctor', '--resolv', '-', '-p', String(port), '--budget', '5'], { input: 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' });
    expect(res.exitCode).toBe(2);
    expect(res.stderr.trim().split('\n').at(-1)).toMatch(/^k8sdiag: no probe got an answer from 127\.0\.0\.1/);
  });
});
