/**
 * Network namespaces to pods, from the node's /proc: each process's namespace inode (ns/net) and the pod its cgroup
 * names (by UID, as `kubectl get pods -o json` gives them). A drop the kernel reports in a pod's namespace is named by
 * that pod, whatever address the packet carried. Bounded in the processes read; a process that ends or cannot be read
 * meanwhile is passed over.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { podUidOfCgroup } from '../capture/pods.js';

const MAX_PROCESSES = 200_000;

export function netnsPods(byUid: ReadonlyMap<string, string>, proc = '/proc'): Map<number, string> {
  const out = new Map<number, string>();
  if (byUid.size === 0) return out;
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((d) => /^\d+$/.test(d)).slice(0, MAX_PROCESSES);
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const m = /net:\[(\d+)\]/.exec(readlinkSync(`${proc}/${pid}/ns/net`));
      if (m === null) continue;
      const inode = Number(m[1]);
      if (out.has(inode)) continue;
      const uid = podUidOfCgroup(readFileSync(`${proc}/${pid}/cgroup`, 'utf8'));
      const name = uid === undefined ? undefined : byUid.get(uid);
      if (name !== undefined) out.set(inode, name);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
