/** What both ways onto a UDP socket (handle.ts, public.ts) give the engine and resolver mode. */

/** The kernel took the datagram. */
export const SENT = 1;
/** Queued in libuv; `sendDone` follows for the slot. */
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

/**
 * One short-lived UDP socket, as a libc resolver opens per query (resolver
 * mode): bound, connected when `to` is given, receiving. Through the handle it
 * is a few synchronous calls (socket, bind, connect, getsockname) instead of a
 * dgram.Socket's events, listeners and callbacks: 3-8 us of user CPU less per
 * socket (docs/performance.md).
 */
export interface UdpEndpoint<T> {
  readonly path: 'handle' | 'public';
  readonly port: number;
  /**
   * Send to the connected peer, or to `to`. A send the kernel refuses is reported as `sendFailed(tag, code)`,
   * always later, never from within: one handler per endpoint, not a closure per datagram.
   */
  send(buf: Buffer, to: { host: string; port: number } | undefined, tag: T): void;
  close(): void;
}

/** Where a datagram came from: Node's own rinfo object, passed on as it is (no string made per datagram). */
export interface Peer {
  readonly address: string;
  readonly port: number;
}

export interface EndpointEvents<T> {
  message(msg: Buffer, from: Peer): void;
  /** A pending socket error (ECONNREFUSED, ...). */
  error(code: string): void;
  /** The send tagged `tag` failed. */
  sendFailed(tag: T, code: string): void;
}
