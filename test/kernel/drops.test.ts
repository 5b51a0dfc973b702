/**
 * `k8sdiag drops`: the drop reasons read from the running kernel's own format file (a copy of 6.18's is the
 * fixture), bpftrace's lines parsed strictly (recorded output of the program on this kernel), and, as root with
 * bpftrace, real drops in a network namespace of the test's own, told apart by that namespace's inode from any other
 * test's: a query to a port with no listener (NO_SOCKET), and one dropped by an iptables rule (NETFILTER_DROP), each
 * counted exactly as sent, while the server behind the rule logged none of them.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropsProgram, parseLine, parseReasons } from '../../src/kernel/drops.js';
import { dropsFindings } from '../../src/commands/drops.js';
import type { DropsResult } from '../../src/commands/drops.js';
import { BIN, readFixture } from '../helpers/run.js';
import { TRACEFS_MOUNTED, kernelLabGate, netnsPerTest, serveIn } from '../helpers/netns.js';
import { startListening } from '../helpers/listening.js';
import { TOOLS, need, titled } from '../helpers/tools.js';

const CONNTRACK = TOOLS.conntrack;

const format = readFixture('kernel/kfree_skb-format-6.18.txt');

describe('the kernel drop reasons and the program\'s lines', () => {
  it('names every reason the running kernel lists, by number; a tracepoint without a reason field has none', () => {
    const reasons = parseReasons(format)!;
    expect(reasons.get(3)).toBe('NO_SOCKET');
    expect(reasons.get(12)).toBe('NETFILTER_DROP');
    expect(reasons.get(64)).toBe('QDISC_DROP');
    // Every `{ N, "NAME" }` pair of the format file, and nothing else.
    expect(reasons.size).toBe([...format.matchAll(/\{ \d+, "/g)].length);
    const before517 = format.replace(/\tfield:enum skb_drop_reason reason;[^\n]*\n/, '').replace(/, REC->reason[\s\S]*$/, ')\n');
    expect(parseReasons(before517)).toBeUndefined();
  });

  it('parses the recorded output strictly: each drop with its reason\'s name, the count left out; anything else is not a drop', () => {
    const reasons = parseReasons(format)!;
    const lines = readFixture('kernel/bpftrace-drops-6.18.txt').trim().split('\n');
    const parsed = lines.map((l) => parseLine(l, reasons));
    expect(parsed[1]).toEqual({ ns: 12573861893166, family: 4, transport: 'udp', src: '127.0.0.1', dst: '127.0.0.1', sport: 37350, dport: 53, reason: 'NO_SOCKET', location: '__udp4_lib_rcv', netns: 4026532308 });
    expect(parsed[2]).toMatchObject({ family: 6, src: '::1', reason: 'NO_SOCKET', location: '__udp6_lib_rcv' });
    expect(parsed[0]).toMatchObject({ reason: 'NETFILTER_DROP', location: 'nft_do_chain' });
    expect(parsed.at(-1)).toEqual({ over: 0 });
    for (const bad of ['', 'Attaching 2 probes...', 'K8SDIAG_DROP 1 4 17 1.2.3.4 5.6.7.8 99999 53 3 f 1', 'K8SDIAG_DROP x', `${lines[1]} extra`]) expect(parseLine(bad, reasons), bad).toBeUndefined();
    expect(parseLine('K8SDIAG_DROP 1 4 17 10.0.0.1 10.0.0.2 1000 53 999 f 7', reasons)).toMatchObject({ reason: 'REASON_999' });
  });

  it('the program watches each DNS port given, both ways, and caps its lines a second', () => {
    const p = dropsProgram([53, 5353], 100);
    expect(p).toContain('$sport == 53 || $dport == 53 || $sport == 5353 || $dport == 5353');
    expect(p).toContain('@inwin >= 100');
    expect(p).toContain('K8SDIAG_OVER');
  });

  it('names a place only on at least 3 drops there', () => {
    const place = (count: number) => ({ reason: 'NO_SOCKET', location: '__udp4_lib_rcv', endpoint: '10.0.0.10:53', direction: 'query' as const, transport: 'udp' as const, count, netns: [1], pods: [] });
    const r = (count: number): Pick<DropsResult, 'byPlace' | 'leftOut' | 'seconds'> => ({ byPlace: [place(count)], leftOut: 0, seconds: 5 });
    expect(dropsFindings(r(2))).toEqual([]);
    expect(dropsFindings(r(3)).map((f) => f.code)).toEqual(['KERNEL_DROPS']);
    // A socket closed with answers unread: counted in byPlace, never a finding.
    expect(dropsFindings({ byPlace: [{ ...place(9), reason: 'QUEUE_PURGE', location: 'sk_stream_kill_queues' }], leftOut: 0, seconds: 5 })).toEqual([]);
  });

  it("tells a rule's netfilter drop from the confirm step's by conntrack's insert_failed over the same interval", () => {
    const at = (location: string, insertFailed: number) =>
      dropsFindings({ byPlace: [{ reason: 'NETFILTER_DROP', location, endpoint: '10.0.3.7:53', direction: 'query', transport: 'udp', count: 4, netns: [1], pods: [] }], leftOut: 0, seconds: 5, counters: { insertFailed, drop: 0, earlyDrop: 0 } })[0]!.message;
    expect(at('nft_do_chain', 0)).toMatch(/a rule's verdict: conntrack's insert_failed did not move in the same interval, so not the insert race$/);
    expect(at('nf_hook_slow', 4)).toMatch(/conntrack's insert_failed rose by 4 in the same interval: entries refused at the confirm step, the insert race$/);
    expect(at('nf_hook_slow', 1)).toMatch(/insert_failed rose by 1 in the same interval$/);
    // A full table: conntrack cannot make the entry and counts the packet in drop (the kernel's nf_conntrack_in path;
    // a full table is not staged here: a network namespace may not lower nf_conntrack_max, and the host's is left alone).
    const full = dropsFindings({ byPlace: [{ reason: 'NETFILTER_DROP', location: 'nf_hook_slow', endpoint: '10.0.3.7:53', direction: 'query', transport: 'udp', count: 4, netns: [1], pods: [] }], leftOut: 0, seconds: 5, counters: { insertFailed: 0, drop: 6, earlyDrop: 0 } })[0]!.message;
    expect(full).toMatch(/conntrack's drop counter rose by 6 in the same interval and insert_failed did not: conntrack could not make entries \(its table full\): see conntrack$/);
    // Without the counters, nothing is said of the cause.
    expect(dropsFindings({ byPlace: [{ reason: 'NETFILTER_DROP', location: 'nf_hook_slow', endpoint: 'x:53', direction: 'query', transport: 'udp', count: 4, netns: [1], pods: [] }], leftOut: 0, seconds: 5 })[0]!.message).not.toMatch(/insert_failed/);
  });
});

const gate = await kernelLabGate(TOOLS.dig);
const newNetns = netnsPerTest();
let logs = '';
beforeAll(() => {
  logs = mkdtempSync(join(tmpdir(), 'k8sdiag-drops-'));
});
afterAll(() => {
  if (logs) rmSync(logs, { recursive: true, force: true });
});

describe("a rule's verdict: the candidate rules", () => {
  it('finds the DROP and REJECT rules that name a DNS port or the endpoint, with table and chain; no other', async () => {
    const { dropRules } = await import('../../src/kernel/rule-finder.js');
    const save = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      '-A INPUT -p tcp -m tcp --dport 22 -j DROP',
      '-A FORWARD -p udp -m udp --dport 53 -m conntrack --ctstate NEW -j DROP',
      '-A FORWARD -p udp -m multiport --dports 80,53,443 -j REJECT --reject-with icmp-port-unreachable',
      '-A FORWARD -d 10.0.3.7/32 -j DROP',
      '-A FORWARD -d 10.0.3.70/32 -j DROP',
      '-A FORWARD -p udp -m udp --dport 5353 -j DROP',
      '-A OUTPUT -p udp -m udp --dport 53 -j ACCEPT',
      'COMMIT',
      '*nat',
      '-A PREROUTING -p udp --dport 53 -j DNAT --to-destination 10.0.3.7:53',
      'COMMIT',
    ].join('\n');
    expect(dropRules(save, [53], ['10.0.3.7']).map((r) => `${r.table} ${r.chain}: ${r.rule}`)).toEqual([
      'filter FORWARD: -A FORWARD -p udp -m udp --dport 53 -m conntrack --ctstate NEW -j DROP',
      'filter FORWARD: -A FORWARD -p udp -m multiport --dports 80,53,443 -j REJECT --reject-with icmp-port-unreachable',
      'filter FORWARD: -A FORWARD -d 10.0.3.7/32 -j DROP',
    ]);
  });
});

describe('--pods: a drop named by its pod', () => {
  it("reads the pod UID kubelet's cgroup drivers write, and maps each network namespace to its pod from /proc", async () => {
    const { podUidOfCgroup } = await import('../../src/capture/pods.js');
    const { netnsPods } = await import('../../src/kernel/netns-pods.js');
    const uid = '0f6a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
    // cgroupfs driver (cgroup v1 lines), and the systemd driver (cgroup v2), as /proc/PID/cgroup shows them.
    expect(podUidOfCgroup(`12:memory:/kubepods/burstable/pod${uid}/5c7a\n11:cpu:/kubepods/burstable/pod${uid}/5c7a\n`)).toBe(uid);
    expect(podUidOfCgroup(`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-5c7a.scope\n`)).toBe(uid);
    expect(podUidOfCgroup('0::/system.slice/containerd.service\n')).toBeUndefined();
    const proc = join(logs, 'proc');
    // (symlinkSync: a /proc/PID/ns/net link's target is only read, never followed)
    for (const [pid, inode, cgroup] of [['101', 4026532001, `0::/kubepods.slice/kubepods-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-a.scope`], ['102', 4026532001, `0::/kubepods.slice/kubepods-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-b.scope`], ['1', 4026531840, '0::/init.scope']] as const) {
      mkdirSync(join(proc, pid, 'ns'), { recursive: true });
      symlinkSync(`net:[${inode}]`, join(proc, pid, 'ns', 'net'));
      writeFileSync(join(proc, pid, 'cgroup'), `${cgroup}\n`);
    }
    mkdirSync(join(proc, 'self'));
    expect([...netnsPods(new Map([[uid, 'kube-system/coredns-7db6d8ff4d-abcde']]), proc)]).toEqual([[4026532001, 'kube-system/coredns-7db6d8ff4d-abcde']]);
    expect(netnsPods(new Map(), proc).size).toBe(0);
  });
});

describe('drops on a real kernel', () => {
  it.skipIf(!gate.ok)(titled('a query to no listener is NO_SOCKET, one a rule drops is NETFILTER_DROP: each counted as sent, in this namespace only', gate), async () => {
    const ns = await newNetns('drops');
    const inode = Number(/net:\[(\d+)\]/.exec((await ns.exec('readlink', ['/proc/self/ns/net'])).stdout)?.[1]);
    expect(inode).toBeGreaterThan(0);
    const log = join(logs, 'served.ndjson');
    const server = await serveIn(ns.name, ['--host', '127.0.0.2', '--port', '53', '--log', log, '--duration', '60']);
    try {
      expect((await ns.exec('iptables', ['-A', 'INPUT', '-d', '127.0.0.2', '-p', 'udp', '--dport', '53', '-j', 'DROP'])).exitCode).toBe(0);
      const podsFile = join(logs, 'pods.json');
      writeFileSync(podsFile, JSON.stringify({ items: [{ metadata: { namespace: 'kube-system', name: 'coredns-a', uid: 'u1' }, spec: {}, status: { podIP: '127.0.0.2' } }] }));
      // In the test's namespace (nsenter keeps the host's /sys, so tracefs): its rules are the ones searched.
      const drops = await startListening(['drops', '--duration', '20', '--json', '--pods', podsFile], /watching skb:kfree_skb/, { netns: ns.name });
      await ns.exec('dig', ['+tries=3', '+time=1', '@127.0.0.1', 'nobody.example']);
      await ns.exec('dig', ['+tries=3', '+time=1', '@127.0.0.2', 'blocked.example']);
      await new Promise((r) => setTimeout(r, 500));
      const { code, stdout } = await drops.stop();
      expect(code).toBe(130);
      const doc = JSON.parse(stdout) as DropsResult;
      const mine = doc.byPlace.filter((p) => p.netns.includes(inode));
      expect(mine.map((p) => [p.reason, p.location, p.endpoint, p.direction, p.count]).sort()).toEqual([
        ['NETFILTER_DROP', 'nft_do_chain', '127.0.0.2:53', 'query', 3],
        ['NO_SOCKET', '__udp4_lib_rcv', '127.0.0.1:53', 'query', 3],
      ]);
      expect(doc.interrupted).toBe(true);
      expect(doc.unparsed).toBe(0);
      // --pods: the rule's drops named by the pod the queries were for; the port without a listener is no pod's.
      expect(mine.find((p) => p.reason === 'NETFILTER_DROP')?.pods).toEqual(['kube-system/coredns-a']);
      expect(mine.find((p) => p.reason === 'NO_SOCKET')?.pods).toEqual([]);
      // The rule's verdict: the rule of this namespace that drops DNS to that address, with its table and chain.
      const rule = doc.findings.find((f) => f.code === 'KERNEL_DROPS' && f.evidence['reason'] === 'NETFILTER_DROP');
      expect(rule?.message).toContain('the rules of this network namespace that drop them: filter INPUT: -A INPUT -d 127.0.0.2/32 -p udp -m udp --dport 53 -j DROP');
      // conntrack's counters over the run were read (this namespace's): the rule's drops did not move insert_failed.
      expect(doc.counters).not.toBeNull();
      // The server behind the rule never saw them.
      expect(existsSync(log) ? readFileSync(log, 'utf8').trim() : '').toBe('');
    } finally {
      server.kill('SIGTERM');
    }
  }, 90_000);
});

describe('drops at a qdisc', () => {
  it.skipIf(!gate.ok)(titled("a link shaped by tc's token bucket under a burst: QDISC_DROP at __dev_queue_xmit, queries and answers, as many as dnsbench's lost queries", gate), async () => {
    // tc netem is not in every kernel; tbf is: a burst past its bucket is dropped as it is queued.
    const ns = await newNetns('qdisc');
    const inode = Number(/net:\[(\d+)\]/.exec((await ns.exec('readlink', ['/proc/self/ns/net'])).stdout)?.[1]);
    expect((await ns.exec('tc', ['qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '1mbit', 'burst', '2k', 'latency', '1ms'])).exitCode).toBe(0);
    const server = await serveIn(ns.name, ['--host', '127.0.0.1', '--port', '53', '--duration', '60']);
    try {
      const drops = await startListening(['drops', '--source', 'bpf', '--duration', '30', '--json'], /watching skb:kfree_skb/);
      const b = await ns.exec(process.execPath, [BIN, 'dnsbench', '--server', '127.0.0.1', '-p', '53', '-d', 'x.example', '-c', '200', '-n', '2000', '--timeout', '1', '--no-progress', '--json'], { timeout: 60_000 });
      const bench = JSON.parse(b.stdout) as { sent: number; answered: number; timeouts: number };
      await new Promise((r) => setTimeout(r, 500));
      const { code, stdout } = await drops.stop();
      expect(code).toBe(130);
      const doc = JSON.parse(stdout) as DropsResult;
      const mine = doc.byPlace.filter((p) => p.netns.includes(inode));
      expect(bench.timeouts).toBeGreaterThan(0);
      expect(mine.every((p) => p.reason === 'QDISC_DROP' && p.location === '__dev_queue_xmit')).toBe(true);
      // Each query was sent once: a lost query or a lost answer is one timeout.
      expect(mine.reduce((n, p) => n + p.count, 0)).toBe(bench.timeouts);
      expect(doc.findings.find((f) => f.code === 'KERNEL_DROPS')?.remedy).toMatch(/could not keep up: a queue or buffer overflowed/);
    } finally {
      server.kill('SIGTERM');
    }
  }, 90_000);
});

/** Run `fn` with a stand-in for the program `name` (a shell script of `body`) first on PATH. */
async function withStandIn(name: string, body: string, fn: () => Promise<unknown>): Promise<void> {
  const bin = join(logs, `stand-in-${name}`);
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, name), 0o755);
  const path = process.env['PATH'];
  process.env['PATH'] = `${bin}:${path ?? ''}`;
  try {
    await fn();
  } finally {
    process.env['PATH'] = path;
  }
}

describe('where drops cannot run', () => {
  const asRoot = process.getuid?.() === 0;

  it.skipIf(!asRoot)('no tracefs, or a kernel without drop reasons: one line that says which and what to do', async () => {
    const { runDrops } = await import('../../src/commands/drops.js');
    await expect(runDrops({ tracefs: [join(logs, 'none')], durationS: 1, source: 'bpf' })).rejects.toThrow(/^tracefs is not mounted: no .*none\/events\/skb\/kfree_skb\/format$/);
    // Each source where it can run: conntrack's events alone, and why the kernel's drops were not read.
    if ((await need(CONNTRACK)).ok) {
      const auto = await runDrops({ tracefs: [join(logs, 'none')], durationS: 0.5 });
      expect(auto.sources.bpf).toMatch(/^tracefs is not mounted/);
      expect(auto.sources.conntrack).toBeNull();
      expect(auto.conntrack).not.toBeNull();
    }
    const old = join(logs, 'old-kernel');
    mkdirSync(join(old, 'events/skb/kfree_skb'), { recursive: true });
    writeFileSync(join(old, 'events/skb/kfree_skb/format'), format.replace(/\tfield:enum skb_drop_reason reason;[^\n]*\n/, '').replace(/, REC->reason[\s\S]*$/, ')\n'));
    await expect(runDrops({ tracefs: [old], durationS: 1, source: 'bpf' })).rejects.toThrow(/has no drop reason \(Linux 5\.17 and later have them\)/);
  });

  it.skipIf(!asRoot || !TRACEFS_MOUNTED)('a bpftrace that never attaches is stopped after its time, and said so, never waited on without end', { timeout: 15_000 }, async () => {
    const { runDrops } = await import('../../src/commands/drops.js');
    // (A wait without end would run into the test's own time limit.)
    await withStandIn('bpftrace', 'exec sleep 600', () => expect(runDrops({ source: 'bpf', attachS: 1, durationS: 1 })).rejects.toThrow(/^bpftrace did not attach to skb:kfree_skb within 1 s$/));
  });

  it.skipIf(!asRoot)("conntrack's subscriptions refused after a moment, not at once: not taken as read, and --source conntrack refuses in one line", { timeout: 15_000 }, async () => {
    const { runDrops } = await import('../../src/commands/drops.js');
    const refusedLate = 'sleep 0.6\necho "conntrack v1.4.7 (conntrack-tools): Operation not permitted" >&2\nexit 1';
    await withStandIn('conntrack', refusedLate, () => expect(runDrops({ source: 'conntrack', durationS: 1.5 })).rejects.toThrow(/^conntrack events: Operation not permitted$/));
  });

  it.skipIf(!asRoot)('not root: exit 2, one line, and the recipe that has the privileges', async () => {
    const r = await (await import('execa')).execa('setpriv', ['--reuid=65532', '--regid=65532', '--clear-groups', process.execPath, BIN, 'drops', '--duration', '1'], { reject: false });
    expect(r.exitCode).toBe(2);
    // Why conntrack's events cannot run is conntrack's own word (without the tool: that it is not installed).
    const why = (await need(CONNTRACK)).ok ? "Can't open netlink socket" : 'the conntrack tool is not installed here';
    expect(String(r.stderr)).toBe(
      `k8sdiag: drops cannot read either source here: the kernel's drops need root with CAP_BPF and CAP_SYS_ADMIN (bpftrace); conntrack events: ${why}\n` +
        'hint: on the node: kubectl debug node/NAME --profile=sysadmin (both), or --profile=netadmin (conntrack events only)',
    );
  });
});
