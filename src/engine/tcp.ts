/** One DNS exchange over TCP (RFC 1035 4.2.2, RFC 7766): the engine's retry of a truncated answer. */
import net from 'node:net';
import { readFramed } from '../dns/wire.js';

/**
 * Connect, send `query` (already framed with its 2-byte length), and hand the first whole message back; a connection
 * error or close before it is `onFail` with `tcp-<code>` or `tcp-closed`. The caller destroys the socket when done.
 */
export function tcpExchange(host: string, port: number, query: Buffer, onReply: (msg: Buffer) => void, onFail: (code: string) => void): net.Socket {
  const conn = net.connect({ host, port });
  let acc: Buffer = Buffer.alloc(0);
  conn.on('connect', () => conn.write(query));
  conn.on('data', (chunk: Buffer) => {
    acc = acc.length === 0 ? chunk : Buffer.concat([acc, chunk]);
    const framed = readFramed(acc);
    if (framed !== undefined) onReply(framed.message);
  });
  conn.on('error', (err: NodeJS.ErrnoException) => onFail(`tcp-${err.code ?? 'error'}`));
  conn.on('close', () => onFail('tcp-closed'));
  return conn;
}
