/**
 * The namespace lab: a reproduced kube-proxy path whose fault a test chooses.
 *
 * Four network namespaces per scene: a pod (client), a node, and two DNS endpoints, each joined to the node by a veth
 * pair; the node forwards. The node holds kube-proxy-shaped rules (KUBE-SERVICES from PREROUTING for pods and OUTPUT
 * for itself -> KUBE-SVC-<hash> with -m statistic -> KUBE-SEP-<hash> DNAT) for the DNS Service's cluster IP
 * 198.18.0.10; its endpoints, 198.18.2.2:53 and 198.18.3.2:53, each run a `k8sdiag serve`. Faults: serve's own (per
 * endpoint), and for the conntrack race, which 6.x kernels resolve, a rule on the node that drops the second
 * not-yet-replied packet of a DNATed UDP flow (conntrack NEW and DNAT + connbytes 2:), as an older kernel's lost insert
 * did. Every scene is taken down after its test, pass or fail.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { afterEach } from 'vitest';
import { createNetns, serveIn } from './netns.js';
import type { Netns } from './netns.js';

// kube-proxy writes one KUBE-SVC chain per Service port: dns (UDP) and dns-tcp (TCP).
export const RULES = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
:KUBE-SVC-ERIFXISQEP7F7OF4 - [0:0]
:KUBE-SEP-DOCTORUDP000000A - [0:0]
:KUBE-SEP-DOCTORUDP000000B - [0:0]
:KUBE-SEP-DOCTORTCP000000A - [0:0]
:KUBE-SEP-DOCTORTCP000000B - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 198.18.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
-A KUBE-SERVICES -d 198.18.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp cluster IP" -m tcp --dport 53 -j KUBE-SVC-ERIFXISQEP7F7OF4
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 198.18.2.2:53" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-DOCTORUDP000000A
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 198.18.3.2:53" -j KUBE-SEP-DOCTORUDP000000B
-A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment "kube-system/kube-dns:dns-tcp -> 198.18.2.2:53" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-DOCTORTCP000000A
-A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment "kube-system/kube-dns:dns-tcp -> 198.18.3.2:53" -j KUBE-SEP-DOCTORTCP000000B
-A KUBE-SEP-DOCTORUDP000000A -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination 198.18.2.2:53
-A KUBE-SEP-DOCTORUDP000000B -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination 198.18.3.2:53
-A KUBE-SEP-DOCTORTCP000000A -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp" -m tcp -j DNAT --to-destination 198.18.2.2:53
-A KUBE-SEP-DOCTORTCP000000B -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp" -m tcp -j DNAT --to-destination 198.18.3.2:53
COMMIT
`;
export const ENDPOINTS = ['198.18.2.2', '198.18.3.2'];

export interface Scene {
  pod: Netns;
  node: Netns;
  endpoints: Netns[];
  etc: string[];
  servers: ChildProcess[];
}
const scenes: Scene[] = [];
afterEach(async () => {
  for (const s of scenes.splice(0)) {
    for (const p of s.servers) p.kill('SIGTERM');
    for (const d of s.etc) rmSync(d, { recursive: true, force: true });
    for (const e of s.endpoints) await e.remove();
    await s.pod.remove();
    await s.node.remove();
  }
});

/**
 * race: the node drops the second not-yet-replied packet of a DNATed flow it forwards; everywhere: of every flow it
 * forwards; nodeOutput: of a DNATed flow the node itself sends.
 */
export async function scene(opts: { faultA?: string[]; faultB?: string[]; logA?: string; logB?: string; resolv: string; race?: boolean; dropSecondEverywhere?: boolean; nodeOutput?: boolean; randomLoss?: number; blockTcp?: boolean; rateLimit?: number; blackholeB?: boolean; serveArgs?: string[] }): Promise<Scene> {
  const tag = randomBytes(3).toString('hex');
  const pod = await createNetns(`dp${tag}`);
  const node = await createNetns(`dn${tag}`);
  const s: Scene = { pod, node, endpoints: [], etc: [], servers: [] };
  scenes.push(s);
  for (const n of [pod, node]) {
    const etc = `/etc/netns/${n.name}`;
    mkdirSync(etc, { recursive: true });
    writeFileSync(`${etc}/resolv.conf`, opts.resolv);
    s.etc.push(etc);
  }
  const sh = async (args: string[]) => {
    const r = await execa('ip', args, { reject: false });
    if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${String(r.stderr)}`);
  };
  const ok = async (n: Netns, cmd: string, args: string[], input?: string) => {
    const r = await n.exec(cmd, args, input !== undefined ? { input } : {});
    if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  };
  const vp = `k8p${tag}`;
  const vn = `k8n${tag}`;
  await sh(['link', 'add', vp, 'netns', pod.name, 'type', 'veth', 'peer', 'name', vn, 'netns', node.name]);
  await sh(['-n', pod.name, 'addr', 'add', '198.18.7.1/30', 'dev', vp]);
  // An IPv6 address too: getaddrinfo (AI_ADDRCONFIG) asks for AAAA only where the host has one.
  await sh(['-n', pod.name, 'addr', 'add', 'fd00:7::1/64', 'dev', vp, 'nodad']);
  await sh(['-n', node.name, 'addr', 'add', '198.18.7.2/30', 'dev', vn]);
  await sh(['-n', node.name, 'addr', 'add', 'fd00:7::2/64', 'dev', vn, 'nodad']);
  await sh(['-n', pod.name, 'link', 'set', vp, 'up']);
  await sh(['-n', node.name, 'link', 'set', vn, 'up']);
  await sh(['-n', pod.name, 'route', 'add', 'default', 'via', '198.18.7.2']);
  // A node has a default route; without one its sockets cannot even be connected to the cluster IP.
  await sh(['-n', node.name, 'route', 'add', 'default', 'via', '198.18.7.1']);
  await ok(node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // Each endpoint its own namespace (a DNS pod), behind its own veth: 198.18.{2,3}.2, the node at .1.
  for (const [i, host] of ENDPOINTS.entries()) {
    const ep = await createNetns(`de${i}${tag}`);
    s.endpoints.push(ep);
    const [a, b] = [`k8e${i}${tag}`, `k8f${i}${tag}`];
    const gw = host.replace(/\.2$/, '.1');
    await sh(['link', 'add', a, 'netns', node.name, 'type', 'veth', 'peer', 'name', b, 'netns', ep.name]);
    await sh(['-n', node.name, 'addr', 'add', `${gw}/30`, 'dev', a]);
    await sh(['-n', ep.name, 'addr', 'add', `${host}/30`, 'dev', b]);
    await sh(['-n', node.name, 'link', 'set', a, 'up']);
    await sh(['-n', ep.name, 'link', 'set', b, 'up']);
    await sh(['-n', ep.name, 'route', 'add', 'default', 'via', gw]);
  }
  await ok(node, 'iptables-restore', [], RULES);
  if (opts.race || opts.dropSecondEverywhere) {
    // The pod's packets to the endpoints are forwarded by the node: drop the second not-yet-replied one of a flow there,
    // of a DNATed flow only for the race (the clash needs NAT on a kernel with the 4.19 fix), of every flow otherwise.
    await ok(node, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1']);
    await ok(node, 'iptables', ['-A', 'FORWARD', '-p', 'udp', '--dport', '53', '-m', 'conntrack', '--ctstate', 'NEW',
      ...(opts.race ? ['-m', 'conntrack', '--ctstate', 'DNAT'] : []),
      '-m', 'connbytes', '--connbytes', '2:', '--connbytes-dir', 'original', '--connbytes-mode', 'packets', '-j', 'DROP']);
  }
  if (opts.randomLoss !== undefined) {
    // Chance loss on the path, no cause: every packet the node forwards, either way, dropped with this probability.
    await ok(node, 'iptables', ['-I', 'FORWARD', '-m', 'statistic', '--mode', 'random', '--probability', String(opts.randomLoss), '-j', 'DROP']);
  }
  if (opts.blockTcp) {
    // A NetworkPolicy that allows DNS over UDP only: TCP to port 53 dropped on the way.
    await ok(node, 'iptables', ['-I', 'FORWARD', '-p', 'tcp', '--dport', '53', '-j', 'DROP']);
  }
  if (opts.rateLimit !== undefined) {
    // Each endpoint takes this many DNS queries a second over UDP and drops the rest, as a rate-limited server does.
    for (const ep of s.endpoints) {
      await ok(ep, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '53', '-m', 'limit', '--limit', `${opts.rateLimit}/second`, '--limit-burst', '10', '-j', 'ACCEPT']);
      await ok(ep, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '53', '-j', 'DROP']);
    }
  }
  if (opts.blackholeB) {
    // The second endpoint answers nothing, over UDP or TCP: a DNS pod that is up in the Service but black-holes DNS.
    for (const proto of ['udp', 'tcp']) await ok(s.endpoints[1]!, 'iptables', ['-A', 'INPUT', '-p', proto, '--dport', '53', '-j', 'DROP']);
  }
  if (opts.nodeOutput) {
    await ok(node, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1']);
    await ok(node, 'iptables', ['-A', 'OUTPUT', '-p', 'udp', '--dport', '53', '-m', 'conntrack', '--ctstate', 'NEW', '-m', 'conntrack', '--ctstate', 'DNAT',
      '-m', 'connbytes', '--connbytes', '2:', '--connbytes-dir', 'original', '--connbytes-mode', 'packets', '-j', 'DROP']);
  }
  for (const [i, [host, faults, log]] of ([[ENDPOINTS[0]!, opts.faultA ?? [], opts.logA], [ENDPOINTS[1]!, opts.faultB ?? [], opts.logB]] as const).entries()) {
    const logArgs = log !== undefined ? ['--log', log] : [];
    s.servers.push(await serveIn(s.endpoints[i]!.name, ['--host', host, '--port', '53', '--zone', 'google.com', '--zone', 'kubernetes.default.svc.cluster.local', '--duration', '120', ...logArgs, ...faults.flatMap((f) => ['--fault', f]), ...(opts.serveArgs ?? [])]));
  }
  return s;
}
