/**
 * glibc (resolv/res_send.c send_dg and send_vc, res_query.c): the candidate
 * names of `k8sdiag resolv`, in order, stopping at the first that answers; for
 * each candidate a fresh UDP socket per nameserver (connected), A and AAAA sent
 * back to back from that one socket (sendmmsg: same source port), waiting for
 * both; per nameserver a time budget of (timeout << ns) / nscount; attempts x
 * nameservers tries. When a pair times out with one of its two replies, glibc
 * switches to single-request and resends on the same socket; a second such
 * event switches to single-request-reopen (the AAAA from a new socket). The
 * switch sticks for the rest of the process: by default every lookup is a
 * fresh process (the switch lasts one lookup), with --long-lived each
 * concurrency slot keeps it, as a long-running application's thread does.
 * A truncated reply sends the pair again over TCP to the same server.
 */
import type { QueryTemplate } from '../../dns/wire.js';
import { EmuSocket, PROBLEM_RCODES, classify, planFor, randomId, timeoutSeconds } from './shared.js';
import type { CandidateResult, LookupOutcome, LookupStats, Nameserver, ResolverEmulationOptions, Shared, Tx } from './shared.js';
import { sendVc } from './vc.js';

/** Mode glibc keeps in its per-thread resolver state. */
export interface GlibcMode {
  singleRequest: boolean;
  reopen: boolean;
}


/** glibc send_dg for one nameserver: returns the transmissions that ended the call. */
async function glibcSendDg(sh: Shared, ns: Nameserver, templates: QueryTemplate[], budgetMs: number, mode: GlibcMode, switches: LookupStats['modeSwitches']): Promise<{ txs: Tx[]; refused: boolean; truncated?: boolean }> {
  const ids = templates.map(() => randomId());
  // Awaited only when it is a promise (the public dgram path): an await per candidate is measurable here.
  const opening = EmuSocket.open(sh, ns);
  let sock = opening instanceof Promise ? await opening : opening;
  const sockets = [sock];
  try {
    for (;;) {
      const deadline = performance.now() + budgetMs;
      const txs: Tx[] = [];
      const single = mode.singleRequest || mode.reopen;
      if (!single || templates.length === 1) {
        templates.forEach((t, i) => txs.push(sock.send(t, ids[i]!)));
        await sock.waitFor(() => txs.every((x) => x.done) || txs.some((x) => x.tc), deadline);
      } else {
        txs.push(sock.send(templates[0]!, ids[0]!));
        const first = await sock.waitFor(() => txs[0]!.done, deadline);
        if (first && sock.failure === undefined && !txs[0]!.tc) {
          if (mode.reopen) {
            const next = EmuSocket.open(sh, ns);
            sock = next instanceof Promise ? await next : next;
            sockets.push(sock);
          }
          txs.push(sock.send(templates[1]!, ids[1]!));
          await sock.waitFor(() => txs[1]!.done, deadline);
        }
      }
      if (sock.failure !== undefined) {
        for (const s of sockets) s.expire(sock.failure);
        return { txs, refused: sock.failure === 'ECONNREFUSED' };
      }
      if (txs.some((x) => x.tc)) {
        // send_dg: "to get the rest of answer, use TCP with same server"; what is still out is abandoned.
        for (const s of sockets) s.expire('cancelled');
        return { txs, refused: false, truncated: true };
      }
      const answered = txs.filter((x) => x.rcode >= 0);
      const usable = answered.some((x) => !PROBLEM_RCODES.has(x.rcode));
      const complete = answered.length === templates.length;
      for (const s of sockets) s.expire('timeout');
      if (complete || answered.length === 0 || templates.length === 1) return { txs, refused: false };
      // Timed out with one of two replies: glibc's adaptive switch.
      if (usable && !mode.singleRequest && !mode.reopen) {
        mode.singleRequest = true;
        switches.singleRequest++;
        continue;
      }
      if (usable && !mode.reopen) {
        mode.reopen = true;
        switches.singleRequestReopen++;
        const next = EmuSocket.open(sh, ns);
        sock = next instanceof Promise ? await next : next;
        sockets.push(sock);
        continue;
      }
      return { txs, refused: false };
    }
  } finally {
    for (const s of sockets) s.close();
  }
}


/**
 * glibc send_dg's wait for nameserver `ns` of `nscount` (res_send.c):
 * seconds = (retrans << ns) / nscount for ns > 0, at least 1 second. A fractional
 * --timeout (glibc itself only has whole seconds) takes the same formula in
 * milliseconds, without the rounding: --timeout 0.5 waits 500 ms.
 */
export function glibcTryBudgetMs(timeoutS: number, ns: number, nscount: number): number {
  if (Number.isInteger(timeoutS)) {
    let seconds = timeoutS << ns;
    if (ns > 0) seconds = Math.floor(seconds / nscount);
    if (seconds <= 0) seconds = 1;
    return seconds * 1000;
  }
  let ms = timeoutS * 1000 * 2 ** ns;
  if (ns > 0) ms /= nscount;
  return Math.max(1, ms);
}

/** glibc __res_context_send for one name: attempts x nameservers, each with its time budget. */
async function glibcResSend(sh: Shared, o: ResolverEmulationOptions, templates: QueryTemplate[], offset: number, mode: GlibcMode, switches: LookupStats['modeSwitches']): Promise<CandidateResult> {
  const nscount = o.nameservers.length;
  const retrans = timeoutSeconds(o);
  // Refused when every try made was; at attempts:0 none is made, and glibc fails without sending (ETIMEDOUT).
  let tried = false;
  let allRefused = true;
  for (let attempt = 0; attempt < o.conf.options.attempts; attempt++) {
    for (let shift = 0; shift < nscount; shift++) {
      const ns = (shift + offset) % nscount;
      const budgetMs = glibcTryBudgetMs(retrans, ns, nscount);
      let r: { txs: Tx[]; refused: boolean; truncated?: boolean } = o.conf.options.useVc
        ? await sendVc(sh, o.nameservers[ns]!, templates, budgetMs)
        : await glibcSendDg(sh, o.nameservers[ns]!, templates, budgetMs, mode, switches);
      if (r.truncated) {
        // res_send: v_circuit set by a TC reply, "goto same_ns" over TCP.
        sh.st.tcpRetries += templates.length;
        r = await sendVc(sh, o.nameservers[ns]!, templates, budgetMs);
      }
      tried = true;
      if (!r.refused) allRefused = false;
      const c = classify(r.txs);
      if (c.kind !== 'timeout' && !r.refused) return c;
    }
  }
  return tried && allRefused ? { kind: 'error', code: 'ECONNREFUSED' } : { kind: 'timeout' };
}

export async function glibcLookup(sh: Shared, o: ResolverEmulationOptions, name: string, mode: GlibcMode, switches: LookupStats['modeSwitches']): Promise<LookupOutcome> {
  const { expansion, templates } = planFor(sh, o.conf, name);
  const offset = o.conf.options.rotate ? sh.rotateOffset++ % o.nameservers.length : 0;
  const send = (i: number): Promise<CandidateResult> => glibcResSend(sh, o, templates[i]!, offset, mode, switches);
  let sawServfail = false;
  let sawNodata = false;
  for (const [i, cand] of expansion.candidates.entries()) {
    if (!cand.sent) continue;
    const result = await send(i);
    if (result.kind === 'answer') return 'answer';
    if (result.kind === 'nxdomain') continue;
    if (result.kind === 'nodata') {
      sawNodata = true;
      continue;
    }
    if (result.kind === 'servfail') {
      sawServfail = true;
      continue;
    }
    // A timeout, REFUSED or an error ends the search loop; glibc then still
    // tries the name as written if it has not yet (res_query.c, after the loop).
    const asIs = expansion.candidates.findIndex((c2) => c2.reason === 'as-is-last');
    if (asIs >= 0 && cand.reason === 'search') {
      const last = await send(asIs);
      if (last.kind === 'answer') return 'answer';
    }
    return result.kind === 'timeout' ? 'timeout' : 'refused';
  }
  if (sawNodata) return 'nodata';
  if (sawServfail) return 'servfail';
  return 'nxdomain';
}

