/**
 * The handle path: Node's UDP handle and `process.binding('udp_wrap')`, with the gate that decides whether they may
 * be used (every function there; on a Node version the suite has not run on, the same calls first tried in a child).
 */
import { spawnSync } from 'node:child_process';
import type dgram from 'node:dgram';
import { getSystemErrorName } from 'node:util';
import { QUEUED, SENT } from './types.js';
import type { EndpointEvents, Peer, UdpEndpoint, UdpEvents, UdpIo } from './types.js';

/** The part of Node's UDP handle (RawUdp) that udpIo uses on a dgram.Socket's own handle. */
export type UdpHandle = Pick<RawUdp, 'send' | 'onmessage'>;
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
export function handleOf(sock: dgram.Socket): UdpHandle | undefined {
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

/** The engine's sockets through their handles (udp.ts has checked that each has one). */
export function handleIo(b: UdpBinding, hs: UdpHandle[], sockets: dgram.Socket[], slots: number, on: UdpEvents): UdpIo {
  const SendWrap = b.SendWrap;

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
export interface UdpBinding {
  UDP: new () => RawUdp;
  SendWrap: SendReqClass;
}

/** An Error as Node's own socket calls make them: `code` is the errno's name. */
function errnoError(status: number, syscall: string): NodeJS.ErrnoException {
  const code = errnoName(status);
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: status, syscall });
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

export function handleEndpoint<T>(b: UdpBinding, family: 'udp4' | 'udp6', to: { host: string; port: number } | undefined, on: EndpointEvents<T>): UdpEndpoint<T> {
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
