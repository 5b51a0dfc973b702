/** Raw UDP servers and a port held closed, for tests of misbehaving peers. */
import dgram from 'node:dgram';

/** A UDP server on loopback whose handler gets each datagram and a reply function. */
export async function rawServer(onMessage: (msg: Buffer, reply: (b: Buffer) => void) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  sock.on('message', (msg, rinfo) => onMessage(msg, (b) => sock.send(b, rinfo.port, rinfo.address)));
  sock.on('error', () => {});
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  return { port: sock.address().port, close: () => new Promise<void>((resolve) => sock.close(() => resolve())) };
}

/**
 * A UDP port on 127.0.0.1 that nothing listens on and nothing will: below the
 * kernel's ephemeral range (where other tests' port-0 sockets land), chosen per
 * process, and checked free.
 */
export async function closedUdpPort(): Promise<number> {
  for (let k = 0; k < 200; k++) {
    const port = 20_000 + ((process.pid * 7 + k * 13) % 10_000);
    const probe = dgram.createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => {
      try {
        probe.close(() => resolve());
      } catch {
        resolve();
      }
    });
    if (free) return port;
  }
  throw new Error('no free UDP port below the ephemeral range');
}
