/**
 * musl (src/network/lookup_name.c, res_msend.c): its own search rule; each
 * candidate's A and AAAA sent at once from one unconnected socket to every
 * nameserver, resent every timeout/attempts seconds until timeout; SERVFAIL
 * stops the lookup, NXDOMAIN goes on to the next name; a truncated answer is
 * asked again over TCP (musl 1.2.4+); a name it cannot encode ends the lookup.
 */
import net from 'node:net';
import { EmuSocket, planFor, randomId, timeoutSeconds } from './shared.js';
import { sendVc } from './vc.js';
import type { LookupOutcome, Nameserver, ResolverEmulationOptions, Shared, Tx } from './shared.js';

export async function muslLookup(sh: Shared, o: ResolverEmulationOptions, name: string): Promise<LookupOutcome> {
  const conf = o.conf;
  const { expansion, templates: plan } = planFor(sh, conf, name);
  const timeoutMs = timeoutSeconds(o) * 1000;
  // res_msend sends while less than the timeout has passed: at timeout:0 nothing, and the lookup fails at once.
  if (timeoutMs <= 0) return 'timeout';
  // attempts:0 divides by zero in musl; dnsbench refuses such a resolv.conf before it gets here.
  const attempts = Math.max(1, conf.options.attempts);
  const retryMs = timeoutMs / attempts;
  // musl uses one IPv6 socket with v4-mapped addresses when any nameserver is IPv6.
  const family = o.nameservers.some((n) => net.isIPv6(n.host)) ? 'udp6' : 'udp4';
  const servers = o.nameservers.map((n) => (family === 'udp6' && net.isIPv4(n.host) ? { host: `::ffff:${n.host}`, port: n.port } : n));
  for (const [i, cand] of expansion.candidates.entries()) {
    // __res_mkquery failed: name_from_dns returns EAI_NONAME and the lookup ends.
    if (!cand.sent) return 'nxdomain';
    const templates = plan[i]!;
    const ids = templates.map(() => randomId());
    const opening = EmuSocket.open(sh, undefined, family);
    const sock = opening instanceof Promise ? await opening : opening;
    try {
      const start = performance.now();
      const answered = new Map<number, Tx>();
      const servfailRetried = new Set<string>();
      for (let round = 0; ; round++) {
        const roundTxs: Array<{ tx: Tx; q: number; ns: Nameserver }> = [];
        let truncated: { q: number; ns: Nameserver } | undefined;
        templates.forEach((t, q) => {
          if (answered.has(q)) return;
          for (const ns of servers) roundTxs.push({ tx: sock.send(t, ids[q]!, ns), q, ns });
        });
        const end = Math.min(start + timeoutMs, start + (round + 1) * retryMs);
        const scan = (): boolean => {
          for (const { tx, q, ns } of roundTxs) {
            if (tx.rcode < 0 || answered.has(q)) continue;
            if (tx.tc) {
              truncated = { q, ns };
              return true;
            }
            if (tx.rcode === 2 && !servfailRetried.has(`${q}/${ns.host}`)) {
              servfailRetried.add(`${q}/${ns.host}`);
              roundTxs.push({ tx: sock.send(templates[q]!, ids[q]!, ns), q, ns });
              continue;
            }
            if (tx.rcode === 0 || tx.rcode === 3 || tx.rcode === 2) answered.set(q, tx);
          }
          return answered.size === templates.length;
        };
        for (;;) {
          await sock.waitFor(scan, end);
          if (truncated === undefined) break;
          // res_msend (musl 1.2.4+): a truncated answer is asked again over TCP, same server, in the time left.
          const { q, ns } = truncated as { q: number; ns: Nameserver };
          truncated = undefined;
          for (const { tx, q: q2 } of roundTxs) {
            if (!tx.done && q2 === q) {
              tx.done = true;
              sh.st.cancelled++;
            }
          }
          sh.st.tcpRetries++;
          const left = Math.max(1, start + timeoutMs - performance.now());
          const host = ns.host.startsWith('::ffff:') ? ns.host.slice(7) : ns.host;
          const r = await sendVc(sh, { host, port: ns.port }, [templates[q]!], left);
          const tx = r.txs[0];
          answered.set(q, tx !== undefined && tx.rcode >= 0 ? tx : { id: 0, t: templates[q]!, sentAt: 0, done: true, rcode: -1, ancount: 0, tc: false });
          if (answered.size === templates.length) break;
        }
        // Copies still out for a query another copy answered are cancelled; the rest time out.
        for (const { tx, q } of roundTxs) {
          if (tx.done) continue;
          tx.done = true;
          if (answered.has(q)) sh.st.cancelled++;
          else sh.st.timeouts++;
        }
        if (answered.size === templates.length || performance.now() >= start + timeoutMs || sock.failure !== undefined) break;
      }
      if (sock.failure !== undefined) {
        sock.expire(sock.failure);
        return 'error';
      }
      const txs = [...answered.values()].filter((t) => t.rcode >= 0);
      if (txs.length < templates.length || txs.some((t) => t.rcode === 2)) return txs.length < templates.length ? 'timeout' : 'servfail';
      if (txs.some((t) => t.rcode === 0 && t.ancount > 0)) return 'answer';
      if (txs.some((t) => t.rcode === 3)) continue;
      continue; // NODATA: musl goes on to the next name
    } finally {
      sock.close();
    }
  }
  return 'nxdomain';
}

