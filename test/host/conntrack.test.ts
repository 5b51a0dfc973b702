/**
 * Live reading against the real kernel, inside a network namespace the test
 * creates: real conntrack entries from real UDP flows through a DNAT rule.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/run.js';
import { canUseNetns, createNetns } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';

// 40 UDP flows to a DNATed service address, each answered by an echo server.
// All 40 sockets stay open until every flow is done, so no two flows can share
// a source port (and with it one conntrack entry).
const FLOWS = `
const dgram = require('node:dgram');
const srv = dgram.createSocket('udp4');
srv.on('message', (m, r) => srv.send(m, r.port, r.address));
srv.bind(5300, '127.0.0.1', async () => {
  const sockets = [];
  await Promise.all(Array.from({ length: 40 }, () => new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    sockets.push(s);
    const t = setTimeout(resolve, 500);
    s.on('message', () => { clearTimeout(t); resolve(); });
    s.send(Buffer.from('ping'), 53, '127.0.0.53');
  })));
  for (const s of sockets) s.close();
  srv.close();
});
`;

const usable = await canUseNetns();
const exitFor = (findings: Array<{ severity: string }>) => (findings.some((f) => f.severity !== 'info') ? 1 : 0);
const nsList: Netns[] = [];
afterEach(async () => {
  while (nsList.length) await nsList.pop()!.remove();
});

describe.skipIf(!usable)('conntrack --live in a network namespace', () => {
  let conntrackInstalled = false;
  beforeAll(async () => {
    const { execa } = await import('execa');
    conntrackInstalled = (await execa('conntrack', ['--version'], { reject: false })).exitCode === 0;
  });

  async function busyNetns(): Promise<Netns> {
    const ns = await createNetns('live');
    nsList.push(ns);
    const rule = await ns.exec('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'udp', '-d', '127.0.0.53', '--dport', '53', '-j', 'DNAT', '--to-destination', '127.0.0.1:5300']);
    expect(rule.exitCode, rule.stderr).toBe(0);
    const flows = await ns.exec(process.execPath, ['-e', FLOWS]);
    expect(flows.exitCode, flows.stderr).toBe(0);
    return ns;
  }

  it('reads /proc, sysctls and conntrack -S of that namespace and counts its entries', async () => {
    const ns = await busyNetns();
    const r = await ns.exec(process.execPath, [BIN, 'conntrack', '--live', '--json']);
    const doc = JSON.parse(r.stdout);
    // The kernel log is machine-wide: another test (or an earlier run) may have
    // filled a table. The exit code must agree with the findings either way.
    expect(r.exitCode, r.stderr).toBe(exitFor(doc.findings));
    expect(doc.sources).toContain('/proc/net/stat/nf_conntrack');
    expect(doc.sources).toContain('/proc/sys/net/netfilter/nf_conntrack_count');
    if (conntrackInstalled) expect(doc.sources).toContain('conntrack -S');
    // 40 UDP flows were tracked (each lives nf_conntrack_udp_timeout seconds).
    expect(doc.table.count).toBeGreaterThanOrEqual(40);
    expect(doc.table.max).toBeGreaterThan(0);
    expect(doc.netns).toMatch(/^net:\[\d+\]$/);
  });

  it('a namespace with no pod network interfaces may be a pod\'s: it says these may not be the node\'s counters; with a veth, not', async () => {
    const ns = await busyNetns();
    const bare = JSON.parse((await ns.exec(process.execPath, [BIN, 'conntrack', '--live', '--json'])).stdout);
    expect(bare.warnings).toContainEqual(expect.stringMatching(/^this network namespace has no pod network interfaces \(lo\): if it is a pod's, these are that pod's own conntrack counters, not the node's/));
    // A CNI's host-side veth, as a node that runs pods has.
    const veth = await ns.exec('ip', ['link', 'add', 'vethk8sd0', 'type', 'veth', 'peer', 'name', 'k8sdpeer0']);
    expect(veth.exitCode, veth.stderr).toBe(0);
    const node = JSON.parse((await ns.exec(process.execPath, [BIN, 'conntrack', '--live', '--json'])).stdout);
    expect(node.warnings.join('\n')).not.toMatch(/pod network interfaces/);
  });

  it('says what it could not read and why (no conntrack tool on PATH)', async () => {
    const ns = await busyNetns();
    const r = await ns.exec('env', ['PATH=/nonexistent', 'NO_COLOR=1', process.execPath, BIN, 'conntrack', '--live']);
    expect(r.exitCode, r.stderr).toBeLessThan(2);
    expect(r.stdout).toContain('not read: dmesg is not installed');
    expect(r.stdout).toContain('not read: conntrack is not installed');
    expect(r.stdout).toMatch(/table \d+ \/ [\d,]+ entries/);
  });

  it('--watch samples twice and reports per-second deltas of every counter', async () => {
    const ns = await busyNetns();
    const started = Date.now();
    const r = await ns.exec(process.execPath, [BIN, 'conntrack', '--watch', '1', '--json']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const doc = JSON.parse(r.stdout);
    expect(r.exitCode, r.stderr).toBe(exitFor(doc.findings));
    expect(doc.watch.seconds).toBeGreaterThanOrEqual(0.99);
    expect(Object.keys(doc.watch.deltas)).toEqual(expect.arrayContaining(Object.keys(doc.counters)));
    for (const d of Object.values(doc.watch.deltas) as Array<{ before: number; after: number; delta: number; perSecond: number; reset: boolean }>) {
      expect(d.reset).toBe(false);
      // Per CPU, then summed: with no wrap and no reset that is the change in the sums, over the interval.
      expect(d.delta).toBe(d.after - d.before);
      expect(d.perSecond).toBeCloseTo(d.delta / doc.watch.seconds, 6);
    }
  });
});
