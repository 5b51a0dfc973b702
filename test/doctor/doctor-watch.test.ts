/**
 * doctor with the real pods' DNS beside its probes, in the namespace lab (../helpers/lab.ts): real glibc clients in the
 * pod resolve through the Service's DNAT under the race stand-in while doctor watches.
 * - From the pod with --watch S: S seconds of the pod's own lookups before the probes, then the probes name the race,
 *   and the verdict says the real traffic shows the same.
 * - From the node, by default: a capture during the probes with the node's own addresses left out. The node's probes
 *   leave through OUTPUT, past the stand-in (it drops forwarded packets), and find no cause; the pod's lookups stall,
 *   and the verdict says so rather than "healthy".
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/run.js';
import { netnsGate } from '../helpers/netns.js';
import { ENDPOINTS, scene } from '../helpers/lab.js';
import type { Scene } from '../helpers/lab.js';
import { TOOLS, titled } from '../helpers/tools.js';

const lab = await netnsGate(TOOLS.tcpdump);
const usable = lab.ok;
if (!usable && process.env.CI) throw new Error('the doctor --watch lab tests need root, iproute2, iptables and tcpdump');
const NO_SEARCH = 'nameserver 198.18.0.10\noptions ndots:1 timeout:1 attempts:2\n';

interface Doc {
  verdict: string[];
  findings: Array<{ code: string; severity: string }>;
  steps: Array<{ step: string; ok: boolean; note: string }>;
  watched: { mode: string; queries: number; clients: number; raceSignature: number; answeredAfterResend: number; excluded: string[]; byEndpoint: Record<string, { queries: number }>; findings: Array<{ code: string }> } | null;
}

/** doctor in `where`, with `lookups` real glibc lookups in the pod, at once, as soon as it says it watches. */
async function doctorWhileResolving(s: Scene, where: 'pod' | 'node', args: string[], lookups: number): Promise<{ code: number; doc: Doc; stderr: string }> {
  const ns = where === 'pod' ? s.pod : s.node;
  const p = spawn('ip', ['netns', 'exec', ns.name, process.execPath, BIN, 'doctor', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => p.once('exit', (c) => resolve(c ?? -1)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`doctor did not start watching: ${err}`)), 30_000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/watching the pods' DNS/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    void exited.then(() => reject(new Error(`doctor exited before watching: ${err}`)));
  });
  // At once, each its own socket: done within one resolver timeout, well inside the capture.
  const done = await Promise.all(Array.from({ length: lookups }, () => s.pod.exec('getent', ['ahosts', 'google.com'], { timeout: 30_000 })));
  for (const g of done) expect(g.exitCode, g.stderr).toBe(0);
  const code = await exited;
  if (out.trim() === '') throw new Error(`doctor printed nothing: exit ${code}: ${err}`);
  return { code, doc: JSON.parse(out) as Doc, stderr: err };
}

const RACE_RESOLV = 'nameserver 198.18.0.10\noptions ndots:1 timeout:2 attempts:2\n';

describe.skipIf(!usable)(titled('doctor and the real pods\' DNS', lab), () => {
  it('from the pod, --watch 8: the pod\'s own lookups lose one of each pair first, the probes name the race; 4 lookups are too few for the signature\'s own test, and the verdict says so instead of agreeing', async () => {
    // The A answered 250 ms late, so the AAAA reaches the node while the flow has no reply yet even on a loaded machine;
    // with a 2 s timeout, glibc's resend of the AAAA (after its resent A is answered) is within the time watch waits.
    const s = await scene({ resolv: RACE_RESOLV, race: true, faultA: ['delay:250@type=A'], faultB: ['delay:250@type=A'] });
    const { code, doc } = await doctorWhileResolving(s, 'pod', ['--watch', '8', '--budget', '8', '--endpoints', ...ENDPOINTS], 4);
    expect(code).toBe(1);
    const w = doc.watched!;
    expect(w.mode).toBe('before');
    expect(w.clients).toBe(1);
    expect(w.raceSignature).toBe(4);
    expect(w.answeredAfterResend).toBe(4);
    expect(doc.findings.map((f) => f.code)).toContain('CONNTRACK_RACE');
    // Every pair lost one, but with no queries sent alone there is no plain loss to test the signature against.
    expect(doc.findings.find((f) => f.code === 'RACE_SIGNATURE')?.severity).toBe('warning');
    expect(doc.verdict.at(-1)).toMatch(/^Real traffic shows RACE_SIGNATURE short of its own test \(see its finding\), so it neither confirms nor rules out CONNTRACK_RACE: 4 of \d+ queries from 1 client waited the timeout .*; 4 of \d+ A\/AAAA pairs lost one\.$/);
  }, 120_000);

  // Seen once in six loaded clean-clone runs (two files at once beside a busy loop): 3 signatures of 4, not seen
  // alone beside the busy loop in four more. The message carries what watch saw, so a next failure says which lookup
  // went unseen; one retry meanwhile.
  it("from the node, by default during the probes: the node's own probes left out, the pods' stalls found though the probes find no cause", { retry: 1, timeout: 240_000 }, async () => {
    // The A answered 250 ms late, so the AAAA reaches the node while the flow has no reply yet even on a loaded machine;
    // with a 2 s timeout, glibc's resend of the AAAA (after its resent A is answered) is within the time watch waits.
    const s = await scene({ resolv: RACE_RESOLV, race: true, faultA: ['delay:250@type=A'], faultB: ['delay:250@type=A'] });
    const { code, doc } = await doctorWhileResolving(s, 'node', ['--budget', '10'], 4);
    const w = doc.watched!;
    expect(w.mode).toBe('during');
    expect(w.excluded).toContain('198.18.7.2');
    // Only the pod's queries: the node's own probes (hundreds of queries) are not among them.
    expect(w.clients).toBe(1);
    expect(w.raceSignature, JSON.stringify({ ...w, findings: w.findings.map((f) => f.code) })).toBe(4);
    // Each of the 4 flows is DNATed to one endpoint at random (1 in 8 runs they all go to one): every query is counted
    // under an endpoint, none under the Service address.
    const keys = Object.keys(w.byEndpoint);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(ENDPOINTS.map((e) => `${e}:53`)).toContain(k);
    expect(Object.values(w.byEndpoint).reduce((n, e) => n + e.queries, 0)).toBe(w.queries);
    expect(doc.findings.map((f) => f.code)).not.toContain('CONNTRACK_RACE');
    expect(doc.findings.map((f) => f.code)).toContain('RACE_SIGNATURE');
    expect(code).toBe(1);
    expect(doc.verdict.at(-1)).toMatch(/^Real traffic stalls though the probes found no cause: 4 of \d+ queries from 1 client waited the timeout \(.*\) during the probes \(.*own addresses left out\)/);
  });

  it('--watch 0: no capture, no watch step, no line', async () => {
    const s = await scene({ resolv: NO_SEARCH });
    const r = await s.node.exec(process.execPath, [BIN, 'doctor', '--json', '--budget', '3', '--watch', '0'], { timeout: 60_000 });
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.watched).toBeNull();
    expect(doc.steps.map((x) => x.step)).not.toContain('watch');
    expect(doc.verdict.join('\n')).not.toMatch(/Real traffic/);
  }, 60_000);
});
