/** Kubernetes' well-known DNS addresses, as every command that looks at a pod's nameservers reads them. */

/** NodeLocalDNS's default link-local listen address. */
export const NODELOCALDNS_IP = '169.254.20.10';

/**
 * A nameserver that can be a Service's cluster IP: a private address (RFC 1918,
 * or an IPv6 ULA), which kube-proxy DNATs. Loopback, link-local (NodeLocalDNS,
 * a cloud's metadata resolver) and public resolvers are not.
 */
export function looksLikeClusterIp(ip: string): boolean {
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(ip);
  if (v4) {
    const a = Number(v4[1]);
    const b = Number(v4[2]);
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
  }
  return /^f[cd][0-9a-f]{2}:/i.test(ip);
}
