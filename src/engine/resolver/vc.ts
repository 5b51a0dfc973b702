/** A lookup's queries over TCP (use-vc, or after a truncated answer), as glibc and musl send them. */
import net from 'node:net';
import { formatHostPort, frame, idOf, patchId, readFramed, sameQuestion } from '../../dns/wire.js';
import type { QueryTemplate } from '../../dns/wire.js';
import { acceptReply, randomId } from './shared.js';
import type { Nameserver, Shared, Tx } from './shared.js';

/**
 * glibc send_vc (options use-vc, or after a truncated UDP reply) and musl's TCP
 * fallback for a truncated reply (1.2.4+): one TCP connection, the queries
 * written, their replies read, within the given time budget.
 */
export async function sendVc(sh: Shared, ns: Nameserver, templates: QueryTemplate[], budgetMs: number): Promise<{ txs: Tx[]; refused: boolean }> {
  const txs: Tx[] = [];
  const conn = net.connect({ host: ns.host, port: ns.port });
  let refused = false;
  let sourcePort = 0;
  try {
    await new Promise<void>((resolve) => {
      let acc: Buffer = Buffer.alloc(0);
      const timer = setTimeout(finish, budgetMs);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      conn.on('connect', () => {
        sourcePort = conn.localPort ?? 0;
        for (const t of templates) {
          const id = randomId();
          const query = Buffer.from(t.bytes);
          patchId(query, id);
          txs.push({ id, t, sentAt: performance.now(), done: false, rcode: -1, ancount: 0, tc: false });
          sh.st.sent++;
          conn.write(frame(query));
        }
      });
      conn.on('data', (chunk: Buffer) => {
        acc = acc.length === 0 ? chunk : Buffer.concat([acc, chunk]);
        for (let f = readFramed(acc); f !== undefined; f = readFramed(acc)) {
          const msg = f.message;
          acc = f.rest;
          const id = msg.length >= 12 ? idOf(msg) : -1;
          const tx = txs.find((x) => !x.done && x.id === id && sameQuestion(msg, x.t));
          if (tx) acceptReply(sh, tx, msg, formatHostPort(ns.host, ns.port), sourcePort, performance.now());
          else if (msg.length < 12) sh.st.malformed++;
          else sh.st.wrongQuestion++;
          if (txs.length > 0 && txs.every((x) => x.done)) finish();
        }
      });
      conn.on('error', (err: NodeJS.ErrnoException) => {
        // A refused connect sent no query: nothing to count but the refusal itself.
        refused = err.code === 'ECONNREFUSED';
        for (const tx of txs) {
          if (tx.done) continue;
          tx.done = true;
          sh.errors.add(`tcp-${err.code ?? 'error'}`);
        }
        finish();
      });
      conn.on('close', finish);
    });
  } finally {
    conn.destroy();
  }
  for (const tx of txs) {
    if (tx.done) continue;
    tx.done = true;
    sh.st.timeouts++;
  }
  return { txs, refused };
}
