/**
 * The header every result starts with, so that documents from many nodes and
 * many runs can be told apart, merged and checked: which schema (name and
 * version), which tool version, which node, when, and for how long.
 */
import { hostname } from 'node:os';
import { VERSION } from './version.js';

export interface ResultHeader {
  /** `k8sdiag.<command>/<version>`: the shape of the rest of the document. */
  schema: string;
  /** k8sdiag's version. */
  tool: string;
  /** The node's name where known (NODE_NAME, as a DaemonSet sets it from the downward API), else the hostname. */
  host: string;
  /** ISO 8601, when the command started. */
  startedAt: string;
  durationMs: number;
}

/** Schema versions: raise one when that command's document changes incompatibly. */
export const SCHEMAS = {
  dnsbench: 'k8sdiag.dnsbench/1',
  conntrack: 'k8sdiag.conntrack/1',
  svc: 'k8sdiag.svc/1',
  resolv: 'k8sdiag.resolv/1',
  serve: 'k8sdiag.serve/1',
  doctor: 'k8sdiag.doctor/1',
  merge: 'k8sdiag.merge/1',
  watch: 'k8sdiag.watch/1',
  drops: 'k8sdiag.drops/1',
} as const;

export function hostName(): string {
  const node = process.env.NODE_NAME;
  return node !== undefined && node.trim() !== '' ? node.trim() : hostname();
}

/** Start the clock for a command; `finish()` gives its header. */
export function startHeader(command: keyof typeof SCHEMAS): { finish: () => ResultHeader } {
  const startedAt = new Date();
  const t0 = performance.now();
  return {
    finish: () => ({
      schema: SCHEMAS[command],
      tool: VERSION,
      host: hostName(),
      startedAt: startedAt.toISOString(),
      durationMs: Number((performance.now() - t0).toFixed(1)),
    }),
  };
}
