/**
 * Datagrams the local kernel dropped before the benchmark could read them.
 *
 * Two sources, both of this network namespace:
 * - the `drops` column of /proc/net/udp and /proc/net/udp6, per socket: exact
 *   for the benchmark's own sockets (found by local and remote port);
 * - `Udp: RcvbufErrors` and `InErrors` of /proc/net/snmp (and the Udp6 lines
 *   of /proc/net/snmp6): every UDP socket of the namespace, so other programs'
 *   drops count too. Kept as context.
 *
 * Where /proc cannot be read (another OS, a locked-down pod), each is null.
 */
import { readFileSync } from 'node:fs';

export interface UdpErrorCounters {
  rcvbufErrors: number;
  inErrors: number;
}

export interface LocalDrops {
  /** Datagrams dropped on the benchmark's own sockets (their receive buffer was full), or null. */
  ownSockets: number | null;
  /** Rise of RcvbufErrors / InErrors over the run for the whole network namespace, or null. */
  namespace: UdpErrorCounters | null;
  /** The receive buffer each socket got, bytes (as the kernel reports it), or null. */
  recvBufferBytes: number | null;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Parse the Udp: lines of /proc/net/snmp and the Udp6 lines of /proc/net/snmp6. */
export function parseUdpSnmp(snmp: string | undefined, snmp6: string | undefined): UdpErrorCounters | null {
  let found = false;
  const out: UdpErrorCounters = { rcvbufErrors: 0, inErrors: 0 };
  if (snmp !== undefined) {
    const lines = snmp.split('\n').filter((l) => l.startsWith('Udp: '));
    const [head, values] = lines;
    if (head !== undefined && values !== undefined) {
      const keys = head.split(/\s+/).slice(1);
      const nums = values.split(/\s+/).slice(1).map(Number);
      const get = (k: string): number => nums[keys.indexOf(k)] ?? 0;
      if (keys.includes('RcvbufErrors')) {
        out.rcvbufErrors += get('RcvbufErrors');
        out.inErrors += get('InErrors');
        found = true;
      }
    }
  }
  if (snmp6 !== undefined) {
    for (const line of snmp6.split('\n')) {
      const [k, v] = line.trim().split(/\s+/);
      if (k === 'Udp6RcvbufErrors') {
        out.rcvbufErrors += Number(v) || 0;
        found = true;
      } else if (k === 'Udp6InErrors') out.inErrors += Number(v) || 0;
    }
  }
  return found ? out : null;
}

export function readUdpSnmp(): UdpErrorCounters | null {
  return parseUdpSnmp(readText('/proc/net/snmp'), readText('/proc/net/snmp6'));
}

/**
 * Sum the `drops` column of /proc/net/udp{,6} rows whose local port is one of
 * `localPorts` and whose remote port is `remotePort` (a connected socket).
 */
export function parseSocketDrops(table: string, localPorts: ReadonlySet<number>, remotePort: number): number {
  let drops = 0;
  for (const line of table.split('\n')) {
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (f.length < 13 || !/^\d+:$/.test(f[0] ?? '')) continue;
    const local = Number.parseInt((f[1] ?? '').split(':')[1] ?? '', 16);
    const remote = Number.parseInt((f[2] ?? '').split(':')[1] ?? '', 16);
    if (localPorts.has(local) && remote === remotePort) drops += Number(f[f.length - 1]) || 0;
  }
  return drops;
}

export function readSocketDrops(localPorts: ReadonlySet<number>, remotePort: number, family: 'udp4' | 'udp6'): number | null {
  const table = readText(family === 'udp6' ? '/proc/net/udp6' : '/proc/net/udp');
  return table === undefined ? null : parseSocketDrops(table, localPorts, remotePort);
}

export function snmpDelta(before: UdpErrorCounters | null, after: UdpErrorCounters | null): UdpErrorCounters | null {
  if (before === null || after === null) return null;
  return { rcvbufErrors: Math.max(0, after.rcvbufErrors - before.rcvbufErrors), inErrors: Math.max(0, after.inErrors - before.inErrors) };
}
