/**
 * Pod IPs to `namespace/name`, from `kubectl get pods -A -o json` (or `-o wide`, with its NAMESPACE column): so a
 * client or an endpoint is named as the cluster names it. Pods on the host network share the node's address and name
 * nothing: they are left out.
 */
import { InputError } from '../errors.js';
import { LIMITS, readTextFile } from '../input.js';

function fromJson(doc: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const items = (doc as { items?: unknown })?.items;
  if (!Array.isArray(items)) throw new InputError('--pods: a JSON document without items: give kubectl get pods -A -o json');
  for (const item of items as Array<Record<string, unknown>>) {
    const meta = item?.['metadata'] as { name?: unknown; namespace?: unknown } | undefined;
    const spec = item?.['spec'] as { hostNetwork?: unknown } | undefined;
    const status = item?.['status'] as { podIP?: unknown; podIPs?: unknown } | undefined;
    if (typeof meta?.name !== 'string' || spec?.hostNetwork === true) continue;
    const name = `${typeof meta.namespace === 'string' ? meta.namespace : 'default'}/${meta.name}`;
    const ips = Array.isArray(status?.podIPs) ? (status.podIPs as Array<{ ip?: unknown }>).map((p) => p?.ip) : [status?.podIP];
    for (const ip of ips) if (typeof ip === 'string' && ip !== '') out.set(ip, name);
  }
  return out;
}

function fromWide(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const head = (lines[0] ?? '').trim().split(/\s+/);
  const ns = head.indexOf('NAMESPACE');
  const name = head.indexOf('NAME');
  const ip = head.indexOf('IP');
  if (name < 0 || ip < 0) throw new InputError('--pods: neither JSON nor a table with NAME and IP columns: give kubectl get pods -A -o json (or -o wide)');
  for (const line of lines.slice(1)) {
    const cols = line.trim().split(/\s+/);
    const addr = cols[ip];
    if (addr === undefined || !/^[0-9a-f.:]+$/i.test(addr)) continue;
    out.set(addr, ns >= 0 ? `${cols[ns]}/${cols[name]}` : `${cols[name]}`);
  }
  return out;
}

export async function readPods(path: string): Promise<Map<string, string>> {
  const text = await readTextFile(path, LIMITS.pods);
  const t = text.trimStart();
  if (t.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(t);
    } catch {
      throw new InputError('--pods: not valid JSON: give kubectl get pods -A -o json');
    }
    return fromJson(doc);
  }
  return fromWide(text);
}
