/** doctor run in the namespace lab (./lab.ts) as the lab's tests run it, and what they read of its JSON. */
import { BIN } from './run.js';
import { ENDPOINTS } from './lab.js';
import type { Scene } from './lab.js';

export type Doc = { context: { view: string }; findings: Array<{ code: string; severity: string; message: string; subject: Record<string, unknown>; evidence: Record<string, unknown> }>; verdict: string[]; probes: unknown[]; path: { found: string | null; endpoints: Array<{ address: string }> } };

/** doctor from the pod (rules not readable: the endpoints given) or from the node (rules read). */
export async function doctor(s: Scene, from: 'pod' | 'node' = 'pod', budget = 20): Promise<{ code: number; doc: Doc }> {
  const args = [BIN, 'doctor', '--json', '--budget', String(budget), ...(from === 'pod' ? ['--endpoints', ...ENDPOINTS] : [])];
  const r = await (from === 'pod' ? s.pod : s.node).exec(process.execPath, args, { timeout: 90_000 });
  if (r.exitCode === 2 || r.stdout.trim() === '') throw new Error(`doctor: exit ${r.exitCode}: ${r.stderr}`);
  return { code: r.exitCode, doc: JSON.parse(r.stdout) as Doc };
}
export const codes = (d: { findings: Array<{ code: string; severity: string }> }) => d.findings.filter((f) => f.severity !== 'info').map((f) => f.code).sort();
/** What names loss with no mechanism, or says nothing of one: every other code is a mechanism. */
export const LOSS_NAMES = ['SERVER_LOSS', 'UDP_PATH_LOSS', 'DNAT_PATH_LOSS', 'STALLS_UNEXPLAINED', 'INCONCLUSIVE', 'NDOTS_COST'];

export const CLUSTER_FIRST = 'nameserver 198.18.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:2\n';
export const NO_SEARCH = 'nameserver 198.18.0.10\noptions ndots:1 timeout:1 attempts:2\n';
