/**
 * Queries that leave a node encapsulated: two namespaces joined by a veth (the underlay) and a VXLAN or Geneve device
 * over it (the overlay, as flannel, Calico and Cilium build them); DNS over the overlay, captured on the underlay,
 * where tcpdump sees only the encapsulated packets. watch takes the overlay off and counts every query.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, run } from '../helpers/run.js';
import { netnsGate, netnsPerTest, serveIn } from '../helpers/netns.js';
import { TOOLS, titled } from '../helpers/tools.js';

const lab = await netnsGate(TOOLS.tcpdump);
const usable = lab.ok;
const netns = netnsPerTest();
/** Whether this kernel builds a device of `kind` (a kernel without the geneve module cannot). */
async function kernelHas(kind: string): Promise<boolean> {
  if (!usable) return false;
  const name = `k8sdiag-probe-${process.pid}-${kind}`;
  await execa('ip', ['netns', 'add', name], { reject: false });
  try {
    const r = await execa('ip', ['-n', name, 'link', 'add', 'p0', 'type', kind, 'id', '1', 'remote', '127.0.0.2', ...(kind === 'vxlan' ? ['dstport', '4789'] : [])], { reject: false });
    return r.exitCode === 0;
  } finally {
    await execa('ip', ['netns', 'del', name], { reject: false });
  }
}
const kinds = { vxlan: await kernelHas('vxlan'), geneve: await kernelHas('geneve') };
// Made in a hook its cleanup pairs: a file whose tests all skip leaves nothing behind.
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-overlay-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!usable)(titled('watch under an overlay', lab), () => {
  for (const kind of ['vxlan', 'geneve'] as const) {
    // The kernel's own modules decide: a kernel without one is said in the skip, not hidden.
    it.skipIf(!kinds[kind])(`${kind}: the queries inside the tunnel, counted as the responder saw them${kinds[kind] ? '' : ' (skipped: this kernel has no ' + kind + ' device)'}`, async () => {
      const a = await netns('ova');
      const b = await netns('ovb');
      const tag = a.name.slice(-6);
      const [va, vb] = [`u${tag}a`, `u${tag}b`];
      const ip = async (args: string[]) => {
        const r = await execa('ip', args, { reject: false });
        if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${String(r.stderr)}`);
      };
      await ip(['link', 'add', va, 'netns', a.name, 'type', 'veth', 'peer', 'name', vb, 'netns', b.name]);
      for (const [n, dev, addr, peer] of [[a, va, '10.99.0.1', '10.99.0.2'], [b, vb, '10.99.0.2', '10.99.0.1']] as const) {
        await ip(['-n', n.name, 'addr', 'add', `${addr}/30`, 'dev', dev]);
        await ip(['-n', n.name, 'link', 'set', dev, 'up']);
        const tunnel = kind === 'vxlan' ? ['type', 'vxlan', 'id', '42', 'remote', peer, 'dstport', '4789', 'dev', dev] : ['type', 'geneve', 'id', '42', 'remote', peer];
        await ip(['-n', n.name, 'link', 'add', 'ov0', ...tunnel]);
        await ip(['-n', n.name, 'addr', 'add', `${addr.replace('10.99', '10.98')}/24`, 'dev', 'ov0']);
        await ip(['-n', n.name, 'link', 'set', 'ov0', 'up']);
      }
      const server = await serveIn(b.name, ['--host', '10.98.0.2', '--port', '53', '--fault', 'drop@every=5', '--duration', '60']);
      const file = join(dir, `${kind}.pcap`);
      const td = spawn('ip', ['netns', 'exec', a.name, 'tcpdump', '-i', va, '--immediate-mode', '-U', '-s', '512', '-w', file, 'udp'], { stdio: ['ignore', 'ignore', 'pipe'] });
      try {
        await new Promise<void>((resolve, reject) => {
          let err = '';
          td.stderr!.on('data', (d: Buffer) => {
            err += d.toString();
            if (/listening on/.test(err)) resolve();
          });
          td.on('exit', () => reject(new Error(err)));
        });
        const r = await a.exec(process.execPath, [BIN, 'dnsbench', '--server', '10.98.0.2', '-n', '40', '-c', '5', '--timeout', '0.5', '--json', '--no-progress'], { timeout: 30_000 });
        expect([0, 1], r.stderr).toContain(r.exitCode);
        const bench = JSON.parse(r.stdout) as { sent: number; answered: number; timeouts: number };
        expect(bench.timeouts).toBe(8);
        await new Promise((res) => setTimeout(res, 300));
        const stopped = new Promise((res) => td.once('exit', res));
        td.kill('SIGTERM');
        await stopped;
        const w = await run(['watch', '--pcap', file, '--timeout', '0.5', '--json']);
        const doc = JSON.parse(w.stdout) as { queries: number; answered: number; unanswered: number; inFlightAtEnd: number; capture: { skipped: Record<string, number> } };
        expect(doc.queries).toBe(40);
        expect(doc.answered).toBe(32);
        expect(doc.unanswered + doc.inFlightAtEnd).toBe(8);
      } finally {
        td.kill('SIGKILL');
        server.kill('SIGTERM');
      }
    }, 60_000);
  }
});
