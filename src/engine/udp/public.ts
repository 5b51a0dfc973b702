/** The public path: dgram.Socket's own API, with the same accounting as the handle path (every query ends once). */
import dgram from 'node:dgram';
import { QUEUED } from './types.js';
import type { EndpointEvents, UdpEndpoint, UdpEvents, UdpIo } from './types.js';

export function publicIo(sockets: dgram.Socket[], slots: number, on: UdpEvents): UdpIo {
  const callbacks = Array.from({ length: slots }, (_, slot) => (err: Error | null) => {
    on.sendDone(slot, err ? ((err as NodeJS.ErrnoException).code ?? 'send') : undefined);
  });
  sockets.forEach((sock, s) => {
    sock.on('message', (msg: Buffer) => on.message(s, msg));
    sock.on('error', (err: NodeJS.ErrnoException) => on.error(s, err.code ?? 'socket'));
  });
  return {
    path: 'public',
    send(s, slot, buf) {
      sockets[s]!.send(buf, callbacks[slot]);
      return QUEUED;
    },
  };
}

export async function publicEndpoint<T>(family: 'udp4' | 'udp6', to: { host: string; port: number } | undefined, on: EndpointEvents<T>): Promise<UdpEndpoint<T>> {
  const sock = dgram.createSocket({ type: family });
  sock.on('message', (msg, rinfo) => on.message(msg, rinfo));
  const close = (): void => {
    try {
      sock.close();
    } catch {
      // already closed
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      const ok = (): void => {
        sock.off('error', reject);
        resolve();
      };
      // A failed connect() comes to this callback, not to 'error'.
      if (to) sock.connect(to.port, to.host, (err?: Error) => (err ? reject(err) : ok()));
      else sock.bind(0, ok);
    });
  } catch (err) {
    close();
    throw err;
  }
  sock.on('error', (err: NodeJS.ErrnoException) => on.error(err.code ?? 'socket'));
  return {
    path: 'public',
    port: sock.address().port,
    send(buf, dest, tag) {
      const cb = (err: Error | null): void => {
        if (err) on.sendFailed(tag, (err as NodeJS.ErrnoException).code ?? 'send');
      };
      if (dest) sock.send(buf, dest.port, dest.host, cb);
      else sock.send(buf, cb);
    },
    close,
  };
}
