/**
 * Where doctor runs and what it diagnoses: the kernel and the conntrack clash fixes it carries, the network namespace,
 * and the workload's libc (./libc.ts: the target's, never doctor's own). Each fact says how it was found, or why it
 * could not be.
 */
import { readlinkSync } from 'node:fs';
import { release } from 'node:os';
import { targetLibc } from '../host/libc.js';
import type { LibcFacts } from '../host/libc.js';

export interface KernelFacts {
  release: string;
  /** major.minor, or null when the release string is not Linux's. */
  version: string | null;
  /**
   * The conntrack clash fixes this kernel has: 4.19 (clashes of identical entries resolved instead of dropped), 5.0
   * (the same for NATed UDP), 5.6 (IPS_NAT_CLASH: clashing UDP NAT entries kept), 5.10 (the clash_resolve counter).
   */
  clashFixes: Array<'4.19' | '5.0' | '5.6' | '5.10'>;
}

export interface TargetFacts {
  kernel: KernelFacts;
  /** The network namespace: the same as PID 1's (a node, or a pod's own init), another, or unknown. */
  netns: { self: string | null; pid1: string | null; sameAsPid1: boolean | null };
  /** The workload's libc: given, or read from its processes' filesystem. */
  workloadLibc: LibcFacts;
}

export function kernelFacts(rel: string = release()): KernelFacts {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return { release: rel, version: null, clashFixes: [] };
  const v = Number(m[1]) * 1000 + Number(m[2]);
  const fixes: KernelFacts['clashFixes'] = [];
  if (v >= 4019) fixes.push('4.19');
  if (v >= 5000) fixes.push('5.0');
  if (v >= 5006) fixes.push('5.6');
  if (v >= 5010) fixes.push('5.10');
  return { release: rel, version: `${m[1]}.${m[2]}`, clashFixes: fixes };
}

function link(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

export function readTargetFacts(libc: { libc?: 'glibc' | 'musl' | 'auto'; pid?: number } = {}): TargetFacts {
  const self = link('/proc/self/ns/net');
  const pid1 = link('/proc/1/ns/net');
  return {
    kernel: kernelFacts(),
    netns: { self, pid1, sameAsPid1: self !== null && pid1 !== null ? self === pid1 : null },
    workloadLibc: targetLibc(libc),
  };
}
