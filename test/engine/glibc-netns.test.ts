/**
 * The adaptive switch against real glibc, in the same test as the emulation.
 *
 * Two network namespaces joined by a veth pair. The server side runs
 * `k8sdiag serve` on port 53 and drops the second not-yet-replied packet of
 * every UDP flow (conntrack state NEW + connbytes 2:, with nf_conntrack_acct
 * on): exactly what a lost conntrack insert race does to glibc's parallel
 * A+AAAA. The client side gets a kubelet-style resolv.conf through
 * /etc/netns/NAME/resolv.conf, which `ip netns exec` mounts over
 * /etc/resolv.conf, so real getaddrinfo reads it.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { BIN } from '../helpers/run.js';
import { canUseNetns, createNetns, serveIn } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';

const usable = await canUseNetns();
const TIMEOUT = 2; // options timeout:2 keeps the test short; the default 5 behaves the same, 2.5x longer
const SERVER_IP = '198.18.7.2';
const CLIENT_IP = '198.18.7.1';

/** Real getaddrinfo(AF_UNSPEC, no AI_ADDRCONFIG), twice in one process, one libuv thread: timings in ms. */
const GETADDRINFO_TWICE = `
const dns = require('node:dns');
const once = () => new Promise((resolve, reject) => {
  const t = performance.now();
  dns.lookup('google.com', { family: 0, hints: 0, all: true }, (err, addrs) => err ? reject(err) : resolve({ ms: performance.now() - t, addrs }));
});
(async () => { const a = await once(); const b = await once(); console.log(JSON.stringify([a, b])); })().catch((e) => { console.error(e.message); process.exit(3); });
`;

describe.skipIf(!usable)('glibc adaptive single-request, real and emulated', () => {
  let client: Netns;
  let server: Netns;
  let serveProc: ChildProcess | undefined;
  let etcDir = '';

  beforeAll(async () => {
    const tag = randomBytes(3).toString('hex');
    client = await createNetns(`c${tag}`);
    server = await createNetns(`s${tag}`);
    const vc = `k8dc${tag}`;
    const vs = `k8ds${tag}`;
    const sh = async (cmd: string, args: string[]) => {
      const r = await execa(cmd, args, { reject: false });
      if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${String(r.stderr)}`);
    };
    await sh('ip', ['link', 'add', vc, 'netns', client.name, 'type', 'veth', 'peer', 'name', vs, 'netns', server.name]);
    await sh('ip', ['-n', client.name, 'addr', 'add', `${CLIENT_IP}/30`, 'dev', vc]);
    await sh('ip', ['-n', server.name, 'addr', 'add', `${SERVER_IP}/30`, 'dev', vs]);
    await sh('ip', ['-n', client.name, 'link', 'set', vc, 'up']);
    await sh('ip', ['-n', server.name, 'link', 'set', vs, 'up']);
    await sh('ip', ['netns', 'exec', server.name, 'sysctl', '-qw', 'net.netfilter.nf_conntrack_acct=1']);
    await sh('ip', ['netns', 'exec', server.name, 'iptables', '-A', 'INPUT', '-p', 'udp', '--dport', '53', '-m', 'conntrack', '--ctstate', 'NEW',
      '-m', 'connbytes', '--connbytes', '2:', '--connbytes-dir', 'original', '--connbytes-mode', 'packets', '-j', 'DROP']);
    etcDir = `/etc/netns/${client.name}`;
    mkdirSync(etcDir, { recursive: true });
    writeFileSync(`${etcDir}/resolv.conf`,
      `search default.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver ${SERVER_IP}\noptions ndots:5 timeout:${TIMEOUT}\n`);
    serveProc = await serveIn(server.name, ['--host', SERVER_IP, '--port', '53', '--zone', 'google.com',
      // A answers take 40 ms, so an AAAA sent right after its A always meets a flow that is still NEW
      // (no reply yet), however loaded the machine: the race is made certain rather than likely.
      '--fault', 'delay:40@type=A', '--duration', '120']);
  }, 30_000);

  afterAll(async () => {
    serveProc?.kill('SIGTERM');
    if (etcDir) rmSync(etcDir, { recursive: true, force: true });
    await client?.remove();
    await server?.remove();
  });

  it('real glibc: one stall for the first lookup (not one per name), none for the next in the same process', async () => {
    const r = await client.exec('env', ['UV_THREADPOOL_SIZE=1', process.execPath, '-e', GETADDRINFO_TWICE], { timeout: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const [first, second] = JSON.parse(r.stdout) as Array<{ ms: number; addrs: Array<{ address: string }> }>;
    expect(first!.addrs.map((a) => a.address).sort()).toEqual(['192.0.2.1', '2001:db8::1']);
    expect(first!.ms).toBeGreaterThanOrEqual(TIMEOUT * 1000 - 50);
    expect(first!.ms).toBeLessThan(TIMEOUT * 1000 * 2 - 100);
    expect(second!.ms, 'no stall: less than the resolver timeout').toBeLessThan(TIMEOUT * 1000);
  });

  it('emulation --long-lived matches it: one switch, one stall, then none', async () => {
    const r = await client.exec(process.execPath, [BIN, 'dnsbench', '--resolv', '--long-lived', '-c', '1', '-n', '2', '-d', 'google.com', '--json', '--no-progress'], { timeout: 60_000 });
    const doc = JSON.parse(r.stdout);
    expect(r.exitCode, r.stderr).toBe(1); // a query timed out: that is the finding
    expect(doc.resolver.modeSwitches).toEqual({ singleRequest: 1, singleRequestReopen: 0 });
    expect(doc.resolver.outcomes).toEqual({ answer: 2 });
    expect(doc.timeouts).toBe(1);
    expect(doc.lookupLatencyMs.max).toBeGreaterThanOrEqual(TIMEOUT * 1000 - 50);
    expect(doc.lookupLatencyMs.max).toBeLessThan(TIMEOUT * 1000 * 2 - 100);
    expect(doc.lookupLatencyMs.min, 'no stall: less than the resolver timeout').toBeLessThan(TIMEOUT * 1000);
  });

  it('default emulation (each lookup a fresh process) stalls every lookup, like two getent runs', async () => {
    const real: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      const g = await client.exec('getent', ['ahosts', 'google.com'], { timeout: 60_000 });
      real.push(performance.now() - t);
      expect(g.exitCode, g.stderr).toBe(0);
      expect(g.stdout).toContain('192.0.2.1');
    }
    for (const ms of real) expect(ms).toBeGreaterThanOrEqual(TIMEOUT * 1000 - 50);
    const r = await client.exec(process.execPath, [BIN, 'dnsbench', '--resolv', '-c', '1', '-n', '2', '-d', 'google.com', '--json', '--no-progress'], { timeout: 60_000 });
    const doc = JSON.parse(r.stdout);
    expect(doc.resolver.modeSwitches.singleRequest).toBe(2);
    expect(doc.lookupLatencyMs.min).toBeGreaterThanOrEqual(TIMEOUT * 1000 - 50);
    expect(doc.lookupStalls.over1s).toBe(2);
  });

  it('options attempts:0: real glibc sends nothing and fails at once, and so does the emulation', async () => {
    const conf = `${etcDir}/resolv.conf`;
    const saved = readFileSync(conf, 'utf8');
    writeFileSync(conf, `nameserver ${SERVER_IP}\noptions attempts:0\n`);
    try {
      // The server answers google.com (A after 40 ms): a failure means no query was answered, none waited for.
      const t = performance.now();
      const g = await client.exec('getent', ['ahosts', 'google.com'], { timeout: 30_000 });
      expect(g.exitCode).toBe(2);
      expect(performance.now() - t, 'under one 5 s timeout, with room for a loaded machine').toBeLessThan(4500);
      const r = await client.exec(process.execPath, [BIN, 'dnsbench', '--resolv', '/etc/resolv.conf', '-d', 'google.com', '-n', '4', '-c', '1', '--json'], { timeout: 30_000 });
      const doc = JSON.parse(r.stdout) as { sent: number; resolver: { outcomes: Record<string, number> } };
      expect(doc.sent).toBe(0);
      expect(doc.resolver.outcomes).toEqual({ timeout: 4 });
      expect(r.stderr).toMatch(/options attempts:0: glibc tries each nameserver attempts times: it sends no query at all/);
    } finally {
      writeFileSync(conf, saved);
    }
  });

  it('single-request-reopen avoids the stall entirely, real and emulated', async () => {
    const t = performance.now();
    const g = await client.exec('env', ['RES_OPTIONS=single-request-reopen', 'getent', 'ahosts', 'google.com'], { timeout: 60_000 });
    const realMs = performance.now() - t;
    expect(g.exitCode, g.stderr).toBe(0);
    expect(realMs, 'no stall: less than the resolver timeout').toBeLessThan(TIMEOUT * 1000);
    const r = await client.exec(process.execPath, [BIN, 'dnsbench', '--resolv', '--single-request-reopen', '-c', '1', '-n', '3', '-d', 'google.com', '--json', '--no-progress'], { timeout: 60_000 });
    const doc = JSON.parse(r.stdout);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(doc.timeouts).toBe(0);
    expect(doc.lookupLatencyMs.max, 'no stall: less than the resolver timeout').toBeLessThan(TIMEOUT * 1000);
  });
});
