/**
 * Send and receive on the engine's connected UDP sockets with no per-packet
 * callback, event, closure or allocation of ours.
 *
 * Node's public API costs, per packet: `socket.send(buf, cb)` builds an
 * argument list, a closure, a send request and a `process.nextTick` for the
 * callback; the 'message' event is an emit with an rinfo object. A profile of
 * dnsbench put about 0.5 us of user CPU per query there (README, performance
 * notes), the difference between 0.9x and 1.0x dnsperf.
 *
 * Node's UDP handle, the object under `dgram.Socket`, reports a send's outcome
 * at once: bytes + 1 when the kernel took the datagram, a negative errno when
 * it refused it, 0 when libuv queued it (the socket's send buffer was full);
 * only then does the request's `oncomplete` fire later. The handle path sends
 * through it with one request object per slot, reused (a slot is not reused
 * until its send has completed), and one shared completion function that
 * finds the slot on the request. It receives through the handle's `onmessage`.
 *
 * The handle and `process.binding('udp_wrap')` are Node internals. They are
 * checked on the sockets just opened; if anything is not as expected the
 * public API is used, with the same accounting (every query still ends once).
 * K8SDIAG_UDP=public forces the public API; the engine tests run both.
 */
import type dgram from 'node:dgram';
import { getSystemErrorName } from 'node:util';

/** The kernel took the datagram. */
export const SENT = 1;
/** Queued in libuv; `onSendDone` follows for the slot. */
export const QUEUED = 0;

export interface UdpEvents {
  /** A datagram on socket `s`. */
  message(s: number, msg: Buffer): void;
  /** A pending socket error on socket `s` (ECONNREFUSED from an ICMP port unreachable, ...). */
  error(s: number, code: string): void;
  /** A QUEUED send of `slot` finished; `code` when it failed. */
  sendDone(slot: number, code: string | undefined): void;
}

export interface UdpIo {
  readonly path: 'handle' | 'public';
  /** Send `buf` for `slot` on socket `s`: SENT, QUEUED, or the error code of a send the kernel refused at once. */
  send(s: number, slot: number, buf: Buffer): number | string;
}

interface UdpHandle {
  send(req: SendReq, list: Buffer[], count: number, hasCallback: boolean): number;
  onmessage: (nread: number, handle: unknown, buf?: Buffer) => void;
}
interface SendReq {
  slot: number;
  list: Buffer[];
  oncomplete: (this: SendReq, status: number) => void;
}
type SendReqClass = new () => SendReq;

function isObject(x: unknown): x is Record<PropertyKey, unknown> {
  return typeof x === 'object' && x !== null;
}

function errnoName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `errno${status}`;
  }
}

/** The handle under a dgram.Socket, if it has the shape this module relies on. */
function handleOf(sock: dgram.Socket): UdpHandle | undefined {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  if (sym === undefined) return undefined;
  const state: unknown = Reflect.get(sock, sym);
  if (!isObject(state)) return undefined;
  const handle = state['handle'];
  if (!isObject(handle) || typeof handle['send'] !== 'function' || typeof handle['onmessage'] !== 'function') return undefined;
  return handle as unknown as UdpHandle;
}

function sendReqClass(): SendReqClass | undefined {
  const argv = [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)];
  // process.binding warns under --pending-deprecation; stay quiet and public then.
  if (argv.includes('--pending-deprecation')) return undefined;
  try {
    const binding: unknown = (process as unknown as { binding(name: string): unknown }).binding('udp_wrap');
    if (!isObject(binding) || typeof binding['SendWrap'] !== 'function') return undefined;
    return binding['SendWrap'] as SendReqClass;
  } catch {
    return undefined;
  }
}

/** Wire `sockets` to `on`, through their handles where possible. `slots`: the most sends in flight at once. */
export function udpIo(sockets: dgram.Socket[], slots: number, on: UdpEvents): UdpIo {
  const handles = process.env['K8SDIAG_UDP'] === 'public' ? [] : sockets.map(handleOf);
  const SendWrap = handles.length > 0 && handles.every((h) => h !== undefined) ? sendReqClass() : undefined;
  if (SendWrap === undefined) return publicIo(sockets, slots, on);
  const hs = handles as UdpHandle[];

  function oncomplete(this: SendReq, status: number): void {
    on.sendDone(this.slot, status < 0 ? errnoName(status) : undefined);
  }
  const reqs: SendReq[] = [];
  for (let slot = 0; slot < slots; slot++) {
    const req = new SendWrap();
    req.slot = slot;
    req.list = [Buffer.alloc(0)];
    req.oncomplete = oncomplete;
    reqs.push(req);
  }
  sockets.forEach((sock, s) => sock.on('error', (err: NodeJS.ErrnoException) => on.error(s, err.code ?? 'socket')));
  hs.forEach((h, s) => {
    h.onmessage = (nread, _handle, buf) => {
      if (nread < 0) on.error(s, errnoName(nread));
      else if (buf !== undefined) on.message(s, buf);
    };
  });
  return {
    path: 'handle',
    send(s, slot, buf) {
      const req = reqs[slot]!;
      req.list[0] = buf;
      const r = hs[s]!.send(req, req.list, 1, true);
      if (r > 0) return SENT;
      if (r === 0) return QUEUED;
      return errnoName(r);
    },
  };
}

function publicIo(sockets: dgram.Socket[], slots: number, on: UdpEvents): UdpIo {
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
