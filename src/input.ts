/** Reading what the user hands us: files and piped standard input. */
import { fstatSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InputError, UsageError } from './errors.js';

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

/** Read all of stdin as UTF-8 (bounded: refuses more than `limit` bytes). */
export async function readStdin(limit = 64 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > limit) throw new InputError(`more than ${limit} bytes on stdin`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readTextFile(path: string): Promise<string> {
  if (path === '-') return readStdin();
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') throw new InputError(`${path}: no such file`);
    if (code === 'EACCES') throw new InputError(`${path}: permission denied`);
    if (code === 'EISDIR') throw new InputError(`${path}: is a directory`);
    throw new InputError(`${path}: ${(err as Error).message}`);
  }
}

export type TextOrLive = { kind: 'text'; text: string; origin: string } | { kind: 'live' };

/**
 * The input rule shared by the analysing commands: --file wins, then --live,
 * then piped stdin; with nothing piped, this machine is read live.
 */
export async function textOrLive(opts: { file?: string | undefined; live?: boolean | undefined; forceLive?: boolean }, stdinLimit?: number): Promise<TextOrLive> {
  if (opts.file !== undefined && opts.live) throw new UsageError('--file and --live are mutually exclusive');
  if (opts.file !== undefined) return { kind: 'text', text: await readTextFile(opts.file), origin: opts.file === '-' ? 'stdin' : opts.file };
  if (!opts.live && !opts.forceLive && stdinIsPiped()) return { kind: 'text', text: await readStdin(stdinLimit), origin: 'stdin' };
  return { kind: 'live' };
}
