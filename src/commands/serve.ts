/**
 * `k8sdiag serve`: flags -> a running responder -> its counts when it stops
 * (Ctrl-C, SIGTERM, the signal, or --duration). Nothing here prints; the query
 * log goes where the caller says.
 */
import { openSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { Responder, parseFault } from '../dns/responder.js';
import type { ResponderStats, SeenQuery } from '../dns/responder.js';
import { UsageError } from '../errors.js';
import type { Finding } from '../findings.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';

export interface ServeInput {
  host: string;
  /** 0: any free port. */
  port: number;
  tcp: boolean;
  a?: string[] | undefined;
  aaaa?: string[] | undefined;
  ttl: number;
  zones?: string[] | undefined;
  /** Fault specs, `KIND[:ARG][@every=N,...]`. */
  faults?: string[] | undefined;
  seed: number;
  /** A file to append every query to as a JSON line, or a stream (stdout). */
  log?: string | NodeJS.WritableStream | undefined;
  durationMs?: number | undefined;
  /** Stops the responder (SIGINT, SIGTERM). */
  signal?: AbortSignal;
  /** Once it listens: the ports it got. */
  onListening?: (ports: { udpPort: number; tcpPort: number | null; faults: string[] }) => void;
  /** A problem while serving (the log became unwritable). */
  onWarning?: (message: string) => void;
}

export interface ServeResult extends ResultHeader, ResponderStats {
  command: 'serve';
  /** The address it listened on (the header's `host` is the machine's name, as in every document). */
  listen: string;
  udpPort: number;
  tcpPort: number | null;
  faults: string[];
  findings: Finding[];
}

/** Check the flags and open the log before listening: a bad path is one line, not a stack after "listening". */
function prepare(input: ServeInput): { log: NodeJS.WritableStream | undefined } {
  if (!isIP(input.host)) throw new UsageError(`--host ${input.host} is not an IP address`);
  for (const a of input.a ?? []) if (!isIPv4(a)) throw new UsageError(`--a ${a} is not an IPv4 address`);
  for (const a of input.aaaa ?? []) if (!isIPv6(a)) throw new UsageError(`--aaaa ${a} is not an IPv6 address`);
  if (input.log === undefined || typeof input.log !== 'string') return { log: input.log };
  let fd: number;
  try {
    fd = openSync(input.log, 'a');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`--log ${input.log}: cannot write there (${e.code ?? e.message})`);
  }
  return { log: createWriteStream('', { fd }) };
}

export async function runServe(input: ServeInput): Promise<ServeResult> {
  const header = startHeader('serve');
  const faults = (input.faults ?? []).map(parseFault);
  const prepared = prepare(input);
  let log = prepared.log;
  const owned = log !== undefined && typeof input.log === 'string';
  log?.on('error', (err: NodeJS.ErrnoException) => {
    input.onWarning?.(`--log: ${err.code ?? err.message}; logging stopped`);
    log = undefined;
  });
  const responder = new Responder({
    host: input.host,
    port: input.port,
    tcp: input.tcp,
    ttl: input.ttl,
    faults,
    seed: input.seed,
    ...(input.a ? { a: input.a } : {}),
    ...(input.aaaa ? { aaaa: input.aaaa } : {}),
    ...(input.zones ? { zones: input.zones } : {}),
    ...(log ? { onQuery: (q: SeenQuery) => log?.write(`${JSON.stringify(q)}\n`) } : {}),
  });
  let ports: { udpPort: number; tcpPort: number };
  try {
    ports = await responder.start();
  } catch (err) {
    if (owned) (prepared.log as NodeJS.WritableStream & { destroy: () => void }).destroy();
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'EADDRINUSE' ? 'another server listens there: choose another --port' : e.code === 'EACCES' ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE' : undefined;
    throw new UsageError(`cannot listen on ${input.host}:${input.port}: ${e.code ?? e.message}`, hint);
  }
  input.onListening?.({ udpPort: ports.udpPort, tcpPort: input.tcp ? ports.tcpPort : null, faults: faults.map((f) => f.spec) });
  await new Promise<void>((resolve) => {
    const timer = input.durationMs !== undefined ? setTimeout(resolve, input.durationMs) : undefined;
    timer?.unref();
    if (input.signal?.aborted) resolve();
    input.signal?.addEventListener('abort', () => {
      if (timer) clearTimeout(timer);
      resolve();
    }, { once: true });
    // Without a duration or a signal the caller keeps the process alive (a server runs until stopped).
  });
  await responder.stop();
  if (owned && prepared.log) await new Promise<void>((r) => (prepared.log as NodeJS.WritableStream).end(() => r()));
  return {
    ...header.finish(),
    command: 'serve',
    listen: input.host,
    udpPort: ports.udpPort,
    tcpPort: input.tcp ? ports.tcpPort : null,
    faults: faults.map((f) => f.spec),
    ...responder.stats,
    findings: [],
  };
}
