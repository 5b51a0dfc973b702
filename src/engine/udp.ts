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
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { getSystemErrorName } from 'node:util';

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

/** The part of Node's UDP handle (RawUdp) that udpIo uses on a dgram.Socket's own handle. */
type UdpHandle = Pick<RawUdp, 'send' | 'onmessage'>;
/** Node's SendWrap: a request object the handle fills in; ours carry what the completion needs. */
type SendReqClass = new () => object;
interface SendReq {
  slot: number;
  list: Buffer[];
  oncomplete: (this: SendReq, status: number) => void;
}

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

/**
 * Node versions the test suite ran the handle path on (the engine suite and dnsbench's CLI tests, both paths; 22.12.0
 * is the image's). On any other, the calls are tried first in a child process.
 */
const CHECKED_NODE_VERSIONS: ReadonlySet<string> = new Set(['v20.20.2', 'v22.12.0']);

let loaded: UdpBinding | null | undefined;
/** The executable a child process runs the probe with (set by the CLI's entry); without one, no probe: public. */
let probeEntry: string | undefined;

export function setProbeEntry(path: string): void {
  probeEntry = path;
}

/** Node's UDP binding where this module may use it, else null (and always null under K8SDIAG_UDP=public). */
export function handleBinding(): UdpBinding | null {
  if (process.env['K8SDIAG_UDP'] === 'public') return null;
  if (loaded === undefined) {
    const b = bindingOf(() => (process as unknown as { binding(name: string): unknown }).binding('udp_wrap'));
    // 'probe': this is the child trying the calls; 'handle': asked for by name (the tests run both paths).
    const asked = process.env['K8SDIAG_UDP'] === 'probe' || process.env['K8SDIAG_UDP'] === 'handle';
    loaded = b !== null && (asked || handlePathVerified(process.version, () => probeInChild())) ? b : null;
  }
  return loaded;
}

/**
 * Whether the handle path may be used on Node `version`: one the suite ran on, or one where `probe` (the same calls
 * in a child process, which a wrong call aborts instead of this one) succeeded.
 */
export function handlePathVerified(version: string, probe: () => boolean): boolean {
  return CHECKED_NODE_VERSIONS.has(version) || probe();
}

/** What the child prints when every call succeeded (udp-probe.ts). */
export const PROBE_OK = 'k8sdiag udp probe: ok';

function probeInChild(): boolean {
  if (probeEntry === undefined) return false;
  const r = spawnSync(process.execPath, [probeEntry], { env: { ...process.env, K8SDIAG_UDP: 'probe' }, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0 && r.stdout.trim() === PROBE_OK;
}

/**
 * The binding, if every function and property this module uses is there, else null. `get` reads it (process.binding
 * warns under --pending-deprecation: then null, and quiet).
 */
export function bindingOf(get: () => unknown): UdpBinding | null {
  const argv = [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)];
  if (argv.includes('--pending-deprecation')) return null;
  try {
    const binding = get();
    if (!isObject(binding) || typeof binding['UDP'] !== 'function' || typeof binding['SendWrap'] !== 'function') return null;
    const UDP = binding['UDP'] as new () => RawUdp;
    const p = UDP.prototype as unknown as Record<string, unknown>;
    const needed = ['bind', 'bind6', 'connect', 'connect6', 'getsockname', 'recvStart', 'send', 'send6', 'close'];
    if (!needed.every((k) => typeof p[k] === 'function')) return null;
    return { UDP, SendWrap: binding['SendWrap'] as SendReqClass };
  } catch {
    return null;
  }
}

/** Wire `sockets` to `on`, through their handles where possible. `slots`: the most sends in flight at once. */
export function udpIo(sockets: dgram.Socket[], slots: number, on: UdpEvents): UdpIo {
  const b = handleBinding();
  const handles = b ? sockets.map(handleOf) : [];
  if (b === null || !handles.every((h) => h !== undefined)) return publicIo(sockets, slots, on);
  const SendWrap = b.SendWrap;
  const hs = handles as UdpHandle[];

  function oncomplete(this: SendReq, status: number): void {
    on.sendDone(this.slot, status < 0 ? errnoName(status) : undefined);
  }
  const reqs: SendReq[] = [];
  for (let slot = 0; slot < slots; slot++) {
    reqs.push(Object.assign(new SendWrap(), { slot, list: [EMPTY], oncomplete }));
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

interface RawUdp {
  bind(ip: string, port: number, flags: number): number;
  bind6(ip: string, port: number, flags: number): number;
  connect(ip: string, port: number): number;
  connect6(ip: string, port: number): number;
  getsockname(out: Record<string, unknown>): number;
  recvStart(): number;
  send(req: object, list: Buffer[], count: number, hasCallback: boolean): number;
  send(req: object, list: Buffer[], count: number, port: number, ip: string, hasCallback: boolean): number;
  send6(req: object, list: Buffer[], count: number, port: number, ip: string, hasCallback: boolean): number;
  onmessage: (nread: number, handle: unknown, buf?: Buffer, rinfo?: { address: string; port: number }) => void;
  close(): void;
}
interface UdpBinding {
  UDP: new () => RawUdp;
  SendWrap: SendReqClass;
}

/** An Error as Node's own socket calls make them: `code` is the errno's name. */
function errnoError(status: number, syscall: string): NodeJS.ErrnoException {
  const code = errnoName(status);
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: status, syscall });
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

/** A send request of an endpoint: its events and the tag of the send it carries. */
interface EndpointReq<T> {
  list: Buffer[];
  tag: T;
  on: EndpointEvents<T>;
  oncomplete: (this: EndpointReq<T>, status: number) => void;
}

/** The completion of every endpoint's queued sends: a failure goes to the request's own handler. */
function endpointSendDone<T>(this: EndpointReq<T>, status: number): void {
  if (status < 0) this.on.sendFailed(this.tag, errnoName(status));
}

const NO_PEER: Peer = { address: '', port: 0 };
const EMPTY = Buffer.alloc(0);

function handleEndpoint<T>(b: UdpBinding, family: 'udp4' | 'udp6', to: { host: string; port: number } | undefined, on: EndpointEvents<T>): UdpEndpoint<T> {
  const v6 = family === 'udp6';
  const h = new b.UDP();
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    h.close();
  };
  const check = (status: number, syscall: string): void => {
    if (status < 0) {
      close();
      throw errnoError(status, syscall);
    }
  };
  check(v6 ? h.bind6('::', 0, 0) : h.bind('0.0.0.0', 0, 0), 'bind');
  if (to) check(v6 ? h.connect6(to.host, to.port) : h.connect(to.host, to.port), 'connect');
  const name: Record<string, unknown> = {};
  check(h.getsockname(name), 'getsockname');
  h.onmessage = (nread, _handle, buf, rinfo) => {
    if (nread < 0) on.error(errnoName(nread));
    else if (buf !== undefined) on.message(buf, rinfo ?? NO_PEER);
  };
  // One completion for every send (endpointSendDone); the request carries the handler and the tag. A request is
  // kept for the next send while no send is queued (the kernel mostly takes a datagram at once); a queued send
  // keeps its own.
  let spare: EndpointReq<T> | undefined;
  const newReq = (): EndpointReq<T> => {
    const req = new b.SendWrap() as EndpointReq<T>;
    req.list = [EMPTY];
    req.tag = undefined as T;
    req.on = on;
    req.oncomplete = endpointSendDone;
    return req;
  };
  check(h.recvStart(), 'recvStart');
  return {
    path: 'handle',
    port: typeof name['port'] === 'number' ? name['port'] : 0,
    send(buf, dest, tag) {
      if (!open) return;
      const req = spare ?? newReq();
      spare = undefined;
      req.list[0] = buf;
      req.tag = tag;
      let r: number;
      if (dest === undefined) r = h.send(req, req.list, 1, true);
      else if (v6) r = h.send6(req, req.list, 1, dest.port, dest.host, true);
      else r = h.send(req, req.list, 1, dest.port, dest.host, true);
      if (r > 0) spare = req;
      else if (r < 0) process.nextTick(() => on.sendFailed(tag, errnoName(r)));
    },
    close,
  };
}

async function publicEndpoint<T>(family: 'udp4' | 'udp6', to: { host: string; port: number } | undefined, on: EndpointEvents<T>): Promise<UdpEndpoint<T>> {
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
