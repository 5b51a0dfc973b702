/** The child's side of the check on Node's UDP handle (udp.ts): the calls tried where a failure cannot hurt. */
import dgram from 'node:dgram';
import { PROBE_OK, QUEUED, SENT, handleBinding, openEndpoint, udpIo } from '../udp.js';
import type { EndpointEvents } from '../udp.js';

/**
 * The child's side of the probe (`K8SDIAG_UDP=probe`): every handle call of this module, on loopback: two connected
 * sockets through udpIo, an endpoint connected and one sending to an address, each datagram received back. Prints
 * PROBE_OK and exits 0, or exits 1; a call Node no longer takes aborts this process, not the one that asked.
 */
export async function runUdpProbe(): Promise<never> {
  const fail = (): never => process.exit(1);
  const timer = setTimeout(fail, 5000);
  const b = handleBinding();
  if (b === null) fail();
  const a = dgram.createSocket('udp4');
  const c = dgram.createSocket('udp4');
  await new Promise<void>((r) => a.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => c.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => a.connect(c.address().port, '127.0.0.1', r));
  await new Promise<void>((r) => c.connect(a.address().port, '127.0.0.1', r));
  // d echoes what the endpoints send, upper-cased, to where it came from.
  const d = dgram.createSocket('udp4');
  await new Promise<void>((r) => d.bind(0, '127.0.0.1', r));
  d.on('message', (msg, from) => d.send(msg.toString().toUpperCase(), from.port, from.address));
  const got = new Set<string>();
  let done: () => void = () => undefined;
  const arrived = new Promise<void>((r) => (done = r));
  const add = (x: string): void => {
    got.add(x);
    if (got.size === 3) done();
  };
  const io = udpIo([a, c], 1, { message: (s, msg) => add(`${s}:${msg.toString()}`), error: fail, sendDone: (_slot, code) => (code === undefined ? undefined : fail()) });
  if (io.path !== 'handle') fail();
  const events: EndpointEvents<number> = { message: (msg) => add(`e:${msg.toString()}`), error: fail, sendFailed: fail };
  const connected = openEndpoint('udp4', { host: '127.0.0.1', port: d.address().port }, events);
  const loose = openEndpoint('udp4', undefined, events);
  if (connected instanceof Promise || loose instanceof Promise) return fail();
  const sent = io.send(0, 0, Buffer.from('x'));
  if (sent !== SENT && sent !== QUEUED) fail();
  connected.send(Buffer.from('y'), undefined, 1);
  loose.send(Buffer.from('z'), { host: '127.0.0.1', port: d.address().port }, 2);
  await arrived;
  if (!got.has('1:x') || !got.has('e:Y') || !got.has('e:Z')) fail();
  for (const x of [connected, loose]) x.close();
  for (const x of [a, c, d]) x.close();
  clearTimeout(timer);
  process.stdout.write(`${PROBE_OK}\n`);
  process.exit(0);
}
