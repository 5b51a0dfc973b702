import type { ServeResult } from '../commands/serve.js';
import { formatHostPort } from '../dns/wire.js';
import type { Style } from './style.js';

/** The line `serve` prints when it starts listening. */
export function listeningLine(host: string, udpPort: number, tcpPort: number | null, faults: string[]): string {
  return `k8sdiag serve: listening on udp ${formatHostPort(host, udpPort)}${tcpPort !== null ? ` and tcp ${formatHostPort(host, tcpPort)}` : ''}${faults.length ? `; faults: ${faults.join(' ')}` : ''}\n`;
}

/** The closing summary (on stderr: stdout may carry the query log). */
export function renderServe(_style: Style, r: ServeResult): string {
  return `k8sdiag serve: ${r.queries} queries in ${(r.durationMs / 1000).toFixed(1)} s; ${Object.entries(r.actions).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}` +
    `${r.malformed ? `; ${r.malformed} malformed` : ''}` +
    `${r.drops ? `; ${r.drops} queries dropped by a full receive buffer (${r.recvBufferBytes ?? '?'} bytes): raise net.core.rmem_max` : ''}\n`;
}
