/**
 * DNS packets the kernel dropped, from the `skb:kfree_skb` tracepoint: a bpftrace program (generated here, run through
 * execa) prints one line per dropped packet to or from a DNS port, with its 5-tuple, the drop reason's number, the
 * kernel function that dropped it and its network namespace's inode; the reason's name is read from the running
 * kernel's own format file for the tracepoint. The program caps its own output per second and counts what it left out.
 */
import { readFileSync } from 'node:fs';

/** Where tracefs may be mounted. */
export const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];
/** Lines a second the program prints at most; the rest are counted (K8SDIAG_OVER). */
export const PER_SECOND = 2000;

export interface DropEvent {
  /** Nanoseconds since boot (CLOCK_MONOTONIC), as the program read them. */
  ns: number;
  family: 4 | 6;
  transport: 'udp' | 'tcp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  reason: string;
  /** The kernel function that freed the packet. */
  location: string;
  /** The network namespace's inode (0: not known). */
  netns: number;
}

/**
 * The drop reasons of the running kernel, by number, from the tracepoint's format file (its `__print_symbolic` list);
 * undefined where the tracepoint has no reason field (kernels before 5.17).
 */
export function parseReasons(format: string): Map<number, string> | undefined {
  if (!/field:enum skb_drop_reason reason;|field:[^;]*\breason;/.test(format)) return undefined;
  const list = /__print_symbolic\(REC->reason,(.*)\)\s*$/m.exec(format)?.[1] ?? '';
  const out = new Map<number, string>();
  for (const m of list.matchAll(/\{\s*(\d+),\s*"([A-Z0-9_]+)"\s*\}/g)) out.set(Number(m[1]), m[2]!);
  return out;
}

/** The format file's text from the first tracefs that has it, and where, or why none. */
export function readFormat(roots: readonly string[] = TRACEFS): { text: string; path: string } | { missing: string } {
  for (const root of roots) {
    const path = `${root}/events/skb/kfree_skb/format`;
    try {
      return { text: readFileSync(path, 'utf8'), path };
    } catch {
      // the next one
    }
  }
  return { missing: `no ${roots.map((r) => `${r}/events/skb/kfree_skb/format`).join(' or ')}` };
}

/** The bpftrace program: every freed packet to or from one of `ports`, IPv4 or IPv6, UDP or TCP. */
export function dropsProgram(ports: readonly number[], perSecond = PER_SECOND): string {
  const onPort = ports.map((p) => `$sport == ${p} || $dport == ${p}`).join(' || ');
  const line = (v: 4 | 6, src: string, dst: string): string =>
    `printf("K8SDIAG_DROP %llu ${v} %u %s %s %u %u %d %s %u\\n", nsecs, $proto, ${src}, ${dst}, $sport, $dport, args->reason, ksym(args->location), $ns);`;
  return `tracepoint:skb:kfree_skb
{
  $skb = (struct sk_buff *)args->skbaddr;
  $ip = $skb->head + $skb->network_header;
  $v = *(uint8 *)$ip >> 4;
  $th = (uint8 *)0;
  $proto = 0;
  if ($v == 4) {
    $proto = *(uint8 *)($ip + 9);
    $th = $ip + (*(uint8 *)$ip & 15) * 4;
  } else if ($v == 6) {
    $proto = *(uint8 *)($ip + 6);
    $th = $ip + 40;
  }
  if ($proto == 17 || $proto == 6) {
    $sport = (*(uint8 *)$th << 8) | *(uint8 *)($th + 1);
    $dport = (*(uint8 *)($th + 2) << 8) | *(uint8 *)($th + 3);
    if (${onPort}) {
      $sec = nsecs / 1000000000;
      if ($sec != @sec) { @sec = $sec; @inwin = 0; }
      if (@inwin >= ${perSecond}) { @over = @over + 1; }
      else {
        @inwin = @inwin + 1;
        $ns = $skb->dev != 0 ? $skb->dev->nd_net.net->ns.inum : ($skb->sk != 0 ? $skb->sk->__sk_common.skc_net.net->ns.inum : 0);
        if ($v == 4) {
          ${line(4, 'ntop(2, *(uint32 *)($ip + 12))', 'ntop(2, *(uint32 *)($ip + 16))')}
        } else {
          $ip6 = (struct ipv6hdr *)$ip;
          ${line(6, 'ntop($ip6->saddr.in6_u.u6_addr8)', 'ntop($ip6->daddr.in6_u.u6_addr8)')}
        }
      }
    }
  }
}
END { printf("K8SDIAG_OVER %d\\n", @over); clear(@sec); clear(@inwin); clear(@over); }
`;
}

const LINE = /^K8SDIAG_DROP (\d+) ([46]) (6|17) ([0-9a-f.:]+) ([0-9a-f.:]+) (\d{1,5}) (\d{1,5}) (\d+) ([A-Za-z0-9_.]+)(?:\+0x[0-9a-f]+)? (\d+)$/;

/** One line of the program's output: a drop, the count it left out, or undefined (anything else). */
export function parseLine(line: string, reasons: ReadonlyMap<number, string>): DropEvent | { over: number } | undefined {
  const over = /^K8SDIAG_OVER (\d+)$/.exec(line);
  if (over !== null) return { over: Number(over[1]) };
  const m = LINE.exec(line);
  if (m === null) return undefined;
  const sport = Number(m[6]);
  const dport = Number(m[7]);
  if (sport > 65535 || dport > 65535) return undefined;
  const code = Number(m[8]);
  return {
    ns: Number(m[1]),
    family: m[2] === '4' ? 4 : 6,
    transport: m[3] === '17' ? 'udp' : 'tcp',
    src: m[4]!,
    dst: m[5]!,
    sport,
    dport,
    reason: reasons.get(code) ?? `REASON_${code}`,
    location: m[9]!,
    netns: Number(m[10]),
  };
}

/**
 * Reasons that mean a socket was closed with data still queued (its owner was done with it: a client that gave up and
 * closed before a late answer was read). The kernel counts them as drops, but no packet was lost on its way: they are
 * reported, never taken as where a query died.
 */
export const CLOSE_REASONS: ReadonlySet<string> = new Set(['QUEUE_PURGE', 'SOCKET_CLOSE', 'TCP_CLOSE']);

/** Places where packets died, grouped by reason and kernel function (first seen first), each group with its total. */
export function byCause<T extends { reason: string; location: string; count: number }>(places: readonly T[]): Array<{ reason: string; location: string; count: number; places: T[] }> {
  const groups = new Map<string, { reason: string; location: string; count: number; places: T[] }>();
  for (const p of places) {
    const key = `${p.reason}|${p.location}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = { reason: p.reason, location: p.location, count: 0, places: [] };
      groups.set(key, g);
    }
    g.count += p.count;
    g.places.push(p);
  }
  return [...groups.values()];
}

/** What to do about drops of one reason. */
export function remedyFor(reason: string): string {
  if (reason === 'NETFILTER_DROP') return 'a firewall rule dropped them (a NetworkPolicy, or a node firewall): iptables-save / nft list ruleset on this node shows which';
  if (reason === 'NO_SOCKET') return 'nothing listened on that address and port: the DNS server is down there, or the Service sends to a stale endpoint';
  if (reason.startsWith('QDISC') || reason === 'CPU_BACKLOG' || reason === 'SOCKET_RCVBUFF') return 'the node could not keep up: a queue or buffer overflowed (raise it, or spread the load)';
  return 'see the kernel drop reason; conntrack -S and the NIC counters tell more';
}
