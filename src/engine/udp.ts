/**
 * Send and receive on UDP sockets with no per-packet callback, event, closure
 * or allocation of ours: the engine's connected sockets (udpIo), and resolver
 * mode's socket per query (openEndpoint).
 *
 * Node's public API costs, per packet: `socket.send(buf, cb)` builds an
 * argument list, a closure, a send request and a `process.nextTick` for the
 * callback; the 'message' event is an emit with an rinfo object: about 0.5 us
 * of user CPU per query in a profile of dnsbench (docs/performance.md),
 * the difference between 0.9x and 1.0x dnsperf.
 *
 * Node's UDP handle, the object under `dgram.Socket`, reports a send's outcome
 * at once: bytes + 1 when the kernel took the datagram, a negative errno when
 * it refused it, 0 when libuv queued it (the socket's send buffer was full);
 * only then does the request's `oncomplete` fire later. The handle path sends
 * through it with one request object per slot, reused (a slot is not reused
 * until its send has completed), and one shared completion function that
 * finds the slot on the request. It receives through the handle's `onmessage`.
 *
 * The handle and `process.binding('udp_wrap')` are Node internals, and a call
 * with arguments a Node release no longer takes aborts the process. So they are
 * used only when every function and property used is there (checked on the
 * binding and on the sockets just opened), and, on a Node version the test suite
 * has not run on, after the same calls succeeded in a child process (run once:
 * `K8SDIAG_UDP=probe`); otherwise the public API is used, with the same
 * accounting (every query still ends once).
 * K8SDIAG_UDP=public forces the public API, K8SDIAG_UDP=handle the handle
 * (where every function is there, without the probe); the engine tests run both.
 */
import type dgram from 'node:dgram';
import { handleBinding, handleEndpoint, handleIo, handleOf } from './udp/handle.js';
import type { UdpHandle } from './udp/handle.js';
import { publicEndpoint, publicIo } from './udp/public.js';
import type { EndpointEvents, UdpEndpoint, UdpEvents, UdpIo } from './udp/types.js';

export { QUEUED, SENT } from './udp/types.js';
export type { EndpointEvents, Peer, UdpEndpoint, UdpEvents, UdpIo } from './udp/types.js';
export { PROBE_OK, bindingOf, handleBinding, handlePathVerified, setProbeEntry } from './udp/handle.js';

/** Wire `sockets` to `on`, through their handles where possible. `slots`: the most sends in flight at once. */
export function udpIo(sockets: dgram.Socket[], slots: number, on: UdpEvents): UdpIo {
  const b = handleBinding();
  const handles = b ? sockets.map(handleOf) : [];
  if (b === null || !handles.every((h) => h !== undefined)) return publicIo(sockets, slots, on);
  return handleIo(b, handles as UdpHandle[], sockets, slots, on);
}

/**
 * Open one endpoint: through the handle where it is as expected, at once (a failure throws), else a
 * dgram.Socket (a promise). At once matters: resolver mode opens a socket per candidate name, and each
 * promise and await there is a visible share of its CPU.
 */
export function openEndpoint<T>(family: 'udp4' | 'udp6', to: { host: string; port: number } | undefined, on: EndpointEvents<T>): UdpEndpoint<T> | Promise<UdpEndpoint<T>> {
  const b = handleBinding();
  return b ? handleEndpoint(b, family, to, on) : publicEndpoint(family, to, on);
}
