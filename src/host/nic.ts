/**
 * The node's network interface counters that count packets a cloud network shaped or dropped: on AWS's ENA, the
 * allowance counters of `ethtool -S` (bw_in/bw_out: bandwidth, pps: packets per second, conntrack: the instance's
 * flow table, linklocal: packets to the VPC's link-local services, its DNS resolver among them, 1024/s per interface).
 * Read before and after doctor's probes; what rose is evidence. Other drivers have none of them, which is said.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';
import { runTool } from '../tool.js';

export const ALLOWANCE_COUNTERS = ['bw_in_allowance_exceeded', 'bw_out_allowance_exceeded', 'pps_allowance_exceeded', 'conntrack_allowance_exceeded', 'linklocal_allowance_exceeded'] as const;
export type AllowanceCounter = (typeof ALLOWANCE_COUNTERS)[number];

export interface NicSample {
  iface: string;
  /** The allowance counters this interface has (none on a driver that does not count them). */
  counters: Partial<Record<AllowanceCounter, number>>;
}

export interface NicReading {
  samples: NicSample[];
  /** Interfaces or tools that could not be read, with why. */
  unavailable: string[];
}

/** `ethtool -S IFACE` output: "NIC statistics:" then one "name: value" per line. Only whole-number values are kept. */
export function parseEthtoolStats(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_.[\]-]+):\s+(\d+)\s*$/.exec(line);
    if (m && Number.isSafeInteger(Number(m[2]))) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** The interfaces worth reading: those with a device behind them (not veths, bridges, tunnels), and the default route's. */
async function candidates(sysfs: string, proc: string): Promise<string[]> {
  const names = new Set<string>();
  try {
    for (const n of await readdir(`${sysfs}/class/net`)) {
      try {
        await readlink(`${sysfs}/class/net/${n}/device`);
        names.add(n);
      } catch {
        // no device: virtual
      }
    }
  } catch {
    // sysfs not readable
  }
  try {
    for (const line of (await readFile(`${proc}/net/route`, 'utf8')).split('\n').slice(1)) {
      const [iface, dest] = line.split('\t');
      if (iface && dest === '00000000') names.add(iface);
    }
  } catch {
    // no routes readable
  }
  names.delete('lo');
  return [...names].sort().slice(0, 8);
}

export async function readNicCounters(opts: { sysfs?: string; proc?: string; ethtool?: string } = {}): Promise<NicReading> {
  const ifaces = await candidates(opts.sysfs ?? '/sys', opts.proc ?? '/proc');
  if (ifaces.length === 0) return { samples: [], unavailable: ['no network interface with a device or a default route in this namespace'] };
  const samples: NicSample[] = [];
  const unavailable: string[] = [];
  for (const iface of ifaces) {
    const r = await runTool(opts.ethtool ?? 'ethtool', ['-S', iface], { timeoutMs: 3000, maxBuffer: 1 << 20 });
    if (r.failed !== undefined) {
      unavailable.push(`${iface}: ${r.failed}`);
      continue;
    }
    const all = parseEthtoolStats(r.stdout);
    const counters: NicSample['counters'] = {};
    for (const c of ALLOWANCE_COUNTERS) if (all[c] !== undefined) counters[c] = all[c];
    if (Object.keys(counters).length === 0) unavailable.push(`${iface}: no allowance counters (its driver does not count them; AWS ENA does)`);
    samples.push({ iface, counters });
  }
  return { samples, unavailable };
}

/** What rose between two readings, per interface and counter (a counter that fell was reset: left out). */
export function nicDeltas(before: NicReading, after: NicReading): Array<{ iface: string; counter: AllowanceCounter; delta: number }> {
  const out: Array<{ iface: string; counter: AllowanceCounter; delta: number }> = [];
  for (const a of after.samples) {
    const b = before.samples.find((s) => s.iface === a.iface);
    if (b === undefined) continue;
    for (const c of ALLOWANCE_COUNTERS) {
      const va = a.counters[c];
      const vb = b.counters[c];
      if (va !== undefined && vb !== undefined && va > vb) out.push({ iface: a.iface, counter: c, delta: va - vb });
    }
  }
  return out;
}
