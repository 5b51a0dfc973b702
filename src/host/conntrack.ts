/**
 * Live reading of this machine's conntrack state: /proc/net/stat/nf_conntrack,
 * /proc/sys/net/netfilter/*, `conntrack -S` and the kernel log where they can
 * be read. What cannot be read is reported with the reason, never guessed.
 *
 * The result is the same text a user could have piped in, so live and piped
 * input go through one parser.
 */
import { readFile, readlink } from 'node:fs/promises';
import { errorMessage } from '../errors.js';
import { runTool } from '../tool.js';
import type { Unavailable } from '../tool.js';
import { NODE_RECIPE } from '../privilege.js';

export type { Unavailable } from '../tool.js';

export interface LiveSample {
  text: string;
  sources: string[];
  unavailable: Unavailable[];
  /** The network namespace read, e.g. "net:[4026531840]". */
  netns?: string;
  /** Seconds since boot when read, to date kernel log lines. */
  uptimeSeconds?: number;
  /** The network interfaces of this namespace (/proc/net/dev), when readable. */
  interfaces?: string[];
}

/**
 * Host-side interfaces of pod networks (CNI veths and bridges, overlay devices, NodeLocalDNS's dummy): a node that runs
 * pods has some; a pod's own namespace has lo and its eth0.
 */
const NODE_SIDE = /^(veth|cali|lxc|cni|flannel|cilium|weave|vxlan|kube-|tunl|gke|eni|azv|docker|br-|genev|antrea|ovn|nodelocaldns|cbr|tun|wg)/;

/** Some interface is the host side of a pod network: this namespace is a node's that runs pods. */
export function hasPodNetworkInterfaces(interfaces: readonly string[]): boolean {
  return interfaces.some((i) => NODE_SIDE.test(i));
}

/** This network namespace's interfaces, from /proc/net/dev; undefined where it cannot be read. */
export async function readInterfaces(proc = '/proc'): Promise<string[] | undefined> {
  try {
    const dev = await readFile(`${proc}/net/dev`, 'utf8');
    return dev
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0]?.trim() ?? '')
      .filter((n) => n !== '');
  } catch {
    return undefined;
  }
}

/**
 * A warning when this namespace shows no interface a node running pods has: then it may be a pod's own, whose
 * counters are not where Service traffic is NATed. Said as a possibility: a node without pods looks the same.
 */
export function podNamespaceWarning(interfaces: readonly string[] | undefined): string | undefined {
  if (interfaces === undefined || hasPodNetworkInterfaces(interfaces)) return undefined;
  return (
    `this network namespace has no pod network interfaces (${interfaces.join(', ') || 'none'}): if it is a pod's, these are that pod's own ` +
    "conntrack counters, not the node's, where Service traffic is NATed and the race is counted; for the node's, run " +
    `it on the node (${NODE_RECIPE}, or a hostNetwork pod)`
  );
}

export interface LiveOptions {
  /** Root of procfs, for tests. */
  procRoot?: string;
  /** Run `conntrack -S` (default true). */
  conntrackTool?: boolean;
  /** Read the kernel log with dmesg (default true). */
  kernelLog?: boolean;
  /** Command used for conntrack -S, for tests. */
  conntrackCommand?: string;
}

const SYSCTLS = [
  'nf_conntrack_count',
  'nf_conntrack_max',
  'nf_conntrack_buckets',
  'nf_conntrack_udp_timeout',
  'nf_conntrack_udp_timeout_stream',
] as const;

function reasonFor(err: unknown, what: string): string {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') {
    return `${what} does not exist: nf_conntrack not loaded, or this network namespace has no conntrack state to show`;
  }
  if (code === 'EACCES' || code === 'EPERM') return `${what}: permission denied (run as root or with CAP_NET_ADMIN)`;
  return `${what}: ${errorMessage(err)}`;
}

export async function readLive(opts: LiveOptions = {}): Promise<LiveSample> {
  const proc = opts.procRoot ?? '/proc';
  const parts: string[] = [];
  const sources: string[] = [];
  const unavailable: Unavailable[] = [];
  const sample: LiveSample = { text: '', sources, unavailable };

  try {
    sample.netns = await readlink(`${proc}/self/ns/net`);
  } catch {
    // not fatal: only shown as context
  }

  const interfaces = await readInterfaces(proc);
  if (interfaces !== undefined) sample.interfaces = interfaces;

  try {
    const up = Number.parseFloat((await readFile(`${proc}/uptime`, 'utf8')).split(' ')[0] ?? '');
    if (Number.isFinite(up)) sample.uptimeSeconds = up;
  } catch {
    // without it, kernel log lines are not dated
  }

  const statPath = `${proc}/net/stat/nf_conntrack`;
  try {
    parts.push(await readFile(statPath, 'utf8'));
    sources.push(statPath);
  } catch (err) {
    unavailable.push({ source: statPath, reason: reasonFor(err, statPath) });
  }

  for (const name of SYSCTLS) {
    const path = `${proc}/sys/net/netfilter/${name}`;
    try {
      const v = (await readFile(path, 'utf8')).trim();
      parts.push(`net.netfilter.${name} = ${v}`);
      sources.push(path);
    } catch (err) {
      unavailable.push({ source: path, reason: reasonFor(err, path) });
    }
  }

  if (opts.conntrackTool ?? true) {
    const cmd = opts.conntrackCommand ?? 'conntrack';
    const r = await runTool(cmd, ['-S'], { timeoutMs: 5000 });
    if (r.failed === undefined && r.stdout.trim() !== '') {
      parts.push(r.stdout);
      sources.push(`${cmd} -S`);
    } else {
      unavailable.push({ source: `${cmd} -S`, reason: r.failed ?? 'printed nothing' });
    }
  }

  if (opts.kernelLog ?? true) {
    const r = await runTool('dmesg', [], { timeoutMs: 5000 });
    if (r.failed === undefined) {
      const lines = r.stdout.split('\n').filter((l) => l.includes('conntrack'));
      if (lines.length > 0) parts.push(lines.join('\n'));
      sources.push('dmesg');
    } else {
      unavailable.push({ source: 'dmesg', reason: r.failed });
    }
  }

  sample.text = parts.join('\n');
  return sample;
}
