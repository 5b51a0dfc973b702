/**
 * Pod IPs to `namespace/name`, from `kubectl get pods -A -o json` (or `-o wide`, with its NAMESPACE column): so a
 * client or an endpoint is named as the cluster names it. Pods on the host network share the node's address and name
 * nothing: they are left out.
 */
import { InputError } from '../errors.js';
import { LIMITS, readTextFile } from '../input.js';

/** Pods by address, and by UID where the input has them (JSON): what a process's cgroup names. */
export interface PodIndex {
  byIp: Map<string, string>;
  byUid: Map<string, string>;
}

function fromJson(doc: unknown, byUid?: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  const items = (doc as { items?: unknown })?.items;
  if (!Array.isArray(items)) throw new InputError('--pods: a JSON document without items: give kubectl get pods -A -o json');
  for (const item of items as Array<Record<string, unknown>>) {
    const meta = item?.['metadata'] as { name?: unknown; namespace?: unknown; uid?: unknown } | undefined;
    const spec = item?.['spec'] as { hostNetwork?: unknown } | undefined;
    const status = item?.['status'] as { podIP?: unknown; podIPs?: unknown } | undefined;
    if (typeof meta?.name !== 'string' || spec?.hostNetwork === true) continue;
    const name = `${typeof meta.namespace === 'string' ? meta.namespace : 'default'}/${meta.name}`;
    if (byUid !== undefined && typeof meta.uid === 'string') byUid.set(meta.uid.toLowerCase(), name);
    const ips = Array.isArray(status?.podIPs) ? (status.podIPs as Array<{ ip?: unknown }>).map((p) => p?.ip) : [status?.podIP];
    for (const ip of ips) if (typeof ip === 'string' && ip !== '') out.set(ip, name);
  }
  return out;
}

/** A table as kubectl prints it: each column starts where its header does (tabwriter pads every row alike). */
function fromWide(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const head = lines[0] ?? '';
  const at = (name: string): number => {
    const m = new RegExp(`(^|\\s)${name}(\\s|$)`).exec(head);
    return m === null ? -1 : m.index + m[1]!.length;
  };
  const ns = at('NAMESPACE');
  const name = at('NAME');
  const ip = at('IP');
  if (name < 0 || ip < 0) throw new InputError('--pods: neither JSON nor a table with NAME and IP columns: give kubectl get pods -A -o json (or -o wide)');
  const cell = (line: string, from: number): string => line.slice(from).trimStart().split(/\s+/)[0] ?? '';
  for (const line of lines.slice(1)) {
    const addr = cell(line, ip);
    if (!/^[0-9a-f.:]+$/i.test(addr) || !/[.:]/.test(addr)) continue;
    out.set(addr, ns >= 0 ? `${cell(line, ns)}/${cell(line, name)}` : cell(line, name));
  }
  return out;
}

export async function readPods(path: string): Promise<Map<string, string>> {
  return (await readPodIndex(path)).byIp;
}

/** The pods by address and (from JSON) by UID. */
export async function readPodIndex(path: string): Promise<PodIndex> {
  const text = await readTextFile(path, LIMITS.pods);
  const t = text.trimStart();
  const byUid = new Map<string, string>();
  if (t.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(t);
    } catch {
      throw new InputError('--pods: not valid JSON: give kubectl get pods -A -o json');
    }
    return { byIp: fromJson(doc, byUid), byUid };
  }
  return { byIp: fromWide(text), byUid };
}

/**
 * The pod UID a process's /proc/PID/cgroup names: kubelet's cgroupfs driver writes `/kubepods/burstable/pod<uid>/...`,
 * its systemd driver `.../kubepods-burstable-pod<uid with _ for ->.slice/...`. Undefined for a process of no pod.
 */
export function podUidOfCgroup(text: string): string | undefined {
  const m = /kubepods[^\n]*?[/-]pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/i.exec(text);
  return m === null ? undefined : m[1]!.replace(/_/g, '-').toLowerCase();
}
