/** The engine's sockets: connected UDP sockets with receive buffers sized for what each has in flight. */
import dgram from 'node:dgram';
import net from 'node:net';
import { formatHostPort } from '../dns/wire.js';
import { openError } from './open-errors.js';

/** Receive buffer per socket: room for every reply it may have in flight (about 2 KiB of kernel memory each). */
export function recvBufferFor(inFlightPerSocket: number): number {
  return Math.min(16 << 20, Math.max(256 << 10, inFlightPerSocket * 4096));
}

/** Open `n` UDP sockets connected to the server; one clear error if any cannot be. */
export async function openConnected(n: number, server: string, port: number, recvBufferSize: number): Promise<dgram.Socket[]> {
  const family = net.isIPv6(server) ? 'udp6' : 'udp4';
  const sockets: dgram.Socket[] = [];
  try {
    for (let s = 0; s < n; s++) {
      const sock = dgram.createSocket({ type: family, recvBufferSize });
      sockets.push(sock);
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        // Node passes a failed connect (ENETUNREACH, EACCES, ...) to this callback, not to 'error'.
        sock.connect(port, server, (err?: Error) => {
          sock.off('error', reject);
          if (err) reject(err);
          else resolve();
        });
      });
    }
  } catch (err) {
    for (const s of sockets) closeQuietly(s);
    throw openError(err, formatHostPort(server, port), true);
  }
  return sockets;
}

export function closeQuietly(s: dgram.Socket): void {
  try {
    s.close();
  } catch {
    // already closed
  }
}

/** The receive buffer the kernel granted (Linux reports twice the size asked for, capped first at net.core.rmem_max), or null. */
export function grantedRecvBuffer(s: dgram.Socket): number | null {
  try {
    return s.getRecvBufferSize();
  } catch {
    return null;
  }
}
