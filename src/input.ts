/**
 * Reading what the user hands us: files and piped standard input, bounded in
 * size and decoded leniently (UTF-8, else Latin-1: one stray byte in a comment
 * must not turn a dump into "binary data"). Each command says how much it
 * accepts; more is one clear line and exit 2, never gigabytes of memory.
 */
import { fstatSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InputError, UsageError } from './errors.js';
import { decodeText } from './text.js';

/** What each kind of input may weigh at most. */
export const LIMITS = {
  /** conntrack -S, /proc, sysctl -a and a kernel log: a few MiB at most in practice. */
  conntrack: 64 << 20,
  /** iptables-save of a 10,000-Service cluster is about 40 MiB. */
  svc: 256 << 20,
  /** A resolv.conf is a few hundred bytes; glibc and musl read lines of at most 255/256 bytes. */
  resolv: 1 << 20,
  /** A --queries file. */
  queries: 64 << 20,
  /** merge: one document (a dnsbench document is tens of KiB); the documents are streamed, any number of them. */
  merge: 32 << 20,
  /** watch --pods: kubectl get pods -A -o json of a 10,000-pod cluster is about 100 MiB. */
  pods: 256 << 20,
} as const;

const MIB = 1 << 20;
const size = (n: number): string => (n >= MIB ? `${Math.round(n / MIB)} MiB` : `${n} bytes`);

/**
 * True when something is piped or redirected into stdin (a pipe, a socket or
 * a regular file). A terminal, /dev/null or a closed stdin is not input.
 */
export function stdinIsPiped(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isFile() || st.isSocket();
  } catch {
    return false;
  }
}

export { decodeText, looksBinary } from './text.js';

/** Read all of stdin (bounded: refuses more than `limit` bytes). */
export async function readStdin(limit: number = LIMITS.conntrack): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > limit) {
      process.stdin.destroy();
      throw new InputError(`more than ${size(limit)} on stdin: too much for this input`, 'is this the right input?');
    }
    chunks.push(buf);
  }
  return decodeText(Buffer.concat(chunks));
}

/**
 * An opened file's stat, refused when it is a directory or a regular file over `limit` (pipes and devices, such as
 * /dev/stdin or <(cmd), are held to it by what is read).
 */
async function checkedStat(fh: Awaited<ReturnType<typeof open>>, path: string, limit: number): Promise<Stats> {
  const st = await fh.stat();
  if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  if (st.isFile() && st.size > limit) throw new InputError(`${path}: ${size(st.size)}, more than the ${size(limit)} this input can be`, 'is this the right file?');
  return st;
}

export async function readTextFile(path: string, limit: number = LIMITS.conntrack): Promise<string> {
  if (path === '-') return readStdin(limit);
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const st = await checkedStat(fh, path, limit);
    const chunks: Buffer[] = [];
    let total = 0;
    if (st.isFile()) {
      // One buffer of the file's size (+1 to see it grow): no second copy to join chunks (svc reads 20 MB dumps).
      const whole = Buffer.allocUnsafe(st.size + 1);
      while (total < whole.length) {
        const { bytesRead } = await fh.read(whole, total, whole.length - total, null);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
      if (total <= st.size) return decodeText(whole.subarray(0, total));
      chunks.push(whole);
    }
    for (;;) {
      const buf = Buffer.alloc(Math.min(1 << 20, limit + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      chunks.push(buf.subarray(0, bytesRead));
      if (total > limit) throw new InputError(`${path}: more than the ${size(limit)} this input can be`, 'is this the right file?');
    }
    return decodeText(Buffer.concat(chunks));
  } catch (err) {
    throw fileError(path, err);
  } finally {
    await fh?.close();
  }
}

/** A file's read error as one line for the user. */
function fileError(path: string, err: unknown): InputError {
  if (err instanceof InputError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return new InputError(`${path}: no such file`);
  if (code === 'EACCES') return new InputError(`${path}: permission denied`);
  if (code === 'EISDIR') return new InputError(`${path}: is a directory`);
  return new InputError(`${path}: ${(err as Error).message}`);
}

/**
 * A file ("-": stdin) read in blocks of bytes, each handed to `onChunk` as it arrives, for inputs of any size; `onChunk`
 * returning false stops the reading there. A missing, unreadable or oversized file is one InputError.
 */
export async function streamBytes(
  path: string,
  onChunk: (chunk: Buffer) => boolean | void,
  limit = Number.POSITIVE_INFINITY,
  opts: { gunzip?: boolean } = {},
): Promise<Unzipped> {
  const state: Unzipped = { gzip: false, gzipError: undefined };
  const consume = async (source: AsyncIterable<Buffer | string>): Promise<void> => {
    let total = 0;
    const chunks = opts.gunzip === true ? gunzipWhenGzip(source, state) : source;
    for await (const c of chunks) {
      const chunk = typeof c === 'string' ? Buffer.from(c) : c;
      total += chunk.length;
      if (total > limit) {
        if (path === '-') process.stdin.destroy();
        throw new InputError(`${path === '-' ? 'stdin' : path}: more than the ${size(limit)} this input can be`, 'is this the right input?');
      }
      if (onChunk(chunk) === false) return;
    }
  };
  if (path === '-') {
    await consume(process.stdin);
    return state;
  }
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    await checkedStat(fh, path, limit);
    await consume(fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false }));
  } catch (err) {
    throw fileError(path, err);
  } finally {
    await fh?.close();
  }
  return state;
}

/** Whether the input was gzip (undone on the way), and why its gzip stream ended early, if it did. */
export interface Unzipped {
  gzip: boolean;
  gzipError: string | undefined;
}

/**
 * The chunks of `source`, gzip undone where its first two bytes are gzip's magic (a capture rotated by
 * `tcpdump -G ... -z gzip`); otherwise as they are. A damaged or cut gzip stream ends the chunks after what it held, and
 * the reason goes in `state.gzipError`: what was read is still reported.
 */
async function* gunzipWhenGzip(source: AsyncIterable<Buffer | string>, state: Unzipped): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const toBuf = (c: Buffer | string): Buffer => (typeof c === 'string' ? Buffer.from(c) : c);
  const first = await it.next();
  if (first.done === true) return;
  let head = toBuf(first.value);
  while (head.length < 2) {
    const more = await it.next();
    if (more.done === true) break;
    head = Buffer.concat([head, toBuf(more.value)]);
  }
  /** The input again from its start: the bytes read to look at, then the rest. */
  const whole = async function* (): AsyncGenerator<Buffer> {
    yield head;
    for (let n = await it.next(); n.done !== true; n = await it.next()) yield toBuf(n.value);
  };
  if (head.length < 2 || head[0] !== 0x1f || head[1] !== 0x8b) {
    yield* whole();
    return;
  }
  state.gzip = true;
  const gz = createGunzip();
  const input = Readable.from(whole());
  input.on('error', (err: Error) => gz.destroy(err));
  input.pipe(gz);
  try {
    for await (const out of gz) yield out as Buffer;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === undefined || !e.code.startsWith('Z_')) throw err;
    state.gzipError = e.code === 'Z_BUF_ERROR' ? 'its gzip stream is cut short' : `its gzip stream is damaged (${e.message})`;
  } finally {
    input.destroy();
    gz.destroy();
  }
}

/** Text is handed on in pieces of at most this many bytes: short-lived strings, however large the reads. */
const PIECE = 1 << 16;

/**
 * A file ("-": stdin) read in chunks of text, each handed to `onChunk` as it arrives, for inputs of any size: what
 * the reader keeps is its own business (merge keeps the document being read). UTF-8; a byte that is not becomes U+FFFD.
 */
export async function streamText(path: string, onChunk: (text: string) => void, limit = Number.POSITIVE_INFINITY): Promise<void> {
  const decoder = new TextDecoder('utf-8');
  await streamBytes(
    path,
    (chunk) => {
      for (let at = 0; at < chunk.length; at += PIECE) onChunk(decoder.decode(chunk.subarray(at, at + PIECE), { stream: true }));
    },
    limit,
  );
  const rest = decoder.decode();
  if (rest !== '') onChunk(rest);
}

/**
 * Where an analysing command reads its input: a file ("-" is stdin), piped
 * stdin, text handed over by another command (doctor), or this machine, live.
 * Declared once; every analysing command takes it.
 */
export type Source =
  | { kind: 'file'; path: string }
  | { kind: 'stdin' }
  | { kind: 'text'; text: string; origin: string }
  | { kind: 'live' };

/** What every analysing command accepts besides its source: how the caller stops it and hears of its progress. */
export interface RunControl {
  /** Stops a long run early (SIGINT): the command returns what it has. */
  signal?: AbortSignal;
  /** Progress for a human: one short line at a time, never part of the result. */
  onProgress?: (message: string) => void;
}

/** A source read into text, or still live (the command reads the machine itself). */
export type LoadedSource = { kind: 'text'; text: string; origin: string } | { kind: 'live' };

/** Read a file or stdin source, bounded by `limit`; text and live pass through. */
export async function loadSource(source: Source, limit: number): Promise<LoadedSource> {
  switch (source.kind) {
    case 'file':
      return { kind: 'text', text: await readTextFile(source.path, limit), origin: source.path === '-' ? 'stdin' : source.path };
    case 'stdin':
      return { kind: 'text', text: await readStdin(limit), origin: 'stdin' };
    default:
      return source;
  }
}

/** A resolv.conf as text: a live source means this machine's /etc/resolv.conf. */
export async function loadResolvConf(source: Source): Promise<{ text: string; origin: string }> {
  const loaded = await loadSource(source.kind === 'live' ? { kind: 'file', path: '/etc/resolv.conf' } : source, LIMITS.resolv);
  if (loaded.kind !== 'text') throw new Error('unreachable: a file source is always read as text');
  return loaded;
}

/**
 * The input rule shared by the analysing commands: --file wins, then --live,
 * then piped stdin; with nothing piped, this machine is read live.
 */
export function chooseSource(opts: { file?: string | undefined; live?: boolean | undefined; forceLive?: boolean }): Source {
  if (opts.file !== undefined && opts.live) throw new UsageError('--file and --live are mutually exclusive');
  if (opts.file !== undefined) return { kind: 'file', path: opts.file };
  if (!opts.live && !opts.forceLive && stdinIsPiped()) return { kind: 'stdin' };
  return { kind: 'live' };
}

/** Text in chunks, handed on as whole lines (without their newline); `end` hands on the last one. */
export function lineReader(onLine: (line: string) => void): { feed(chunk: string): void; end(): void } {
  let tail = '';
  return {
    feed(chunk) {
      let from = 0;
      for (let eol = chunk.indexOf('\n'); eol >= 0; eol = chunk.indexOf('\n', from)) {
        if (from === 0 && tail !== '') {
          onLine(tail + chunk.slice(0, eol));
          tail = '';
        } else onLine(chunk.slice(from, eol));
        from = eol + 1;
      }
      if (from < chunk.length) tail += chunk.slice(from);
    },
    end() {
      if (tail !== '') onLine(tail);
      tail = '';
    },
  };
}
