/**
 * What each way of running k8sdiag on a node grants, said the same way everywhere: the image runs as root, and
 * kubectl's debug profiles add the capabilities (netadmin: NET_ADMIN and NET_RAW; sysadmin: all of them).
 */

/** The node recipe that reads kube-proxy's rules, the conntrack counters and captures DNS. */
export const NODE_RECIPE = 'kubectl debug node/NAME --profile=netadmin';
/** The one that also reads the kernel log and other pods' files. */
export const NODE_RECIPE_FULL = 'kubectl debug node/NAME --profile=sysadmin';

/** Why a tool was refused, as what to do: by who runs it, and what that tool needs. */
export function deniedAdvice(file: string, uid: number | undefined = process.getuid?.()): string {
  if (uid !== undefined && uid !== 0) return `permission denied: run as root with NET_ADMIN (${NODE_RECIPE}, or a pod with runAsUser: 0)`;
  if (file === 'dmesg') return `permission denied: the kernel log needs CAP_SYSLOG (${NODE_RECIPE_FULL})`;
  return `permission denied: needs NET_ADMIN (${NODE_RECIPE}, or a pod with that capability)`;
}
