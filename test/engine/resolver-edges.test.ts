/**
 * Resolver emulation at its edges: truncated replies retried over TCP as the
 * libc does, refusals, dead nameservers (musl), glibc's wait per nameserver,
 * and servers that cannot be reached at all (a network namespace without a route).
 */
import { describe, expect, it } from 'vitest';
import { glibcTryBudgetMs, runResolverEmulation } from '../../src/engine/resolver.js';
import { parseFault } from '../../src/dns/responder.js';
import type { Responder } from '../../src/dns/responder.js';
import { UserError } from '../../src/errors.js';
import { parseResolvConf } from '../../src/resolv/parse.js';
import { startResponder } from '../helpers/responders.js';
import { emulateAt } from '../helpers/emulate.js';
import { closedUdpPort } from '../helpers/servers.js';
import { canUseNetns, netnsPerTest } from '../helpers/netns.js';
import { BIN } from '../helpers/run.js';

const emulate = emulateAt;
const at = (r: Responder) => ({ host: '127.0.0.1', port: r.udpPort });

describe('truncated replies: the libc asks again over TCP', () => {
  it('glibc: a TC reply sends the pair again over TCP to the same server (send_vc); the lookup is answered', async () => {
    const r = await startResponder({ faults: [parseFault('truncate@type=A')] });
    const res = await emulate([at(r)], 'nameserver 127.0.0.1\n', 'glibc');
    expect(res.lookups.outcomes).toEqual({ answer: 1 });
    expect(res.engine.truncated).toBe(1);
    expect(res.engine.tcpRetries).toBe(2);
    expect(r.seen.filter((q) => q.proto === 'tcp').map((q) => q.type).sort()).toEqual(['A', 'AAAA']);
  });

  it('musl: the truncated query alone goes over TCP; the lookup is answered', async () => {
    const r = await startResponder({ faults: [parseFault('truncate@type=AAAA')] });
    const res = await emulate([at(r)], 'nameserver 127.0.0.1\n', 'musl');
    expect(res.lookups.outcomes).toEqual({ answer: 1 });
    expect(res.engine.tcpRetries).toBe(1);
    expect(r.seen.filter((q) => q.proto === 'tcp').map((q) => q.type)).toEqual(['AAAA']);
  });
});

describe('refusals and dead nameservers', () => {
  it('glibc: a refused nameserver ends its try at once and the next one answers', async () => {
    const dead = await closedUdpPort();
    const r = await startResponder();
    const res = await emulate([{ host: '127.0.0.1', port: dead }, at(r)], 'nameserver 127.0.0.1\nnameserver 127.0.0.2\noptions timeout:2\n', 'glibc');
    expect(res.lookups.outcomes).toEqual({ answer: 1 });
    expect(res.engine.errors.ECONNREFUSED).toBeGreaterThanOrEqual(1);
    expect(res.lookups.stalls.over1s).toBe(0);
  });

  it('musl with one dead nameserver: both are asked at once, the live one answers, nothing stalls', async () => {
    const dead = await startResponder({ faults: [parseFault('drop')] });
    const live = await startResponder();
    const res = await emulate([at(dead), at(live)], 'nameserver 127.0.0.1\nnameserver 127.0.0.2\noptions timeout:2\n', 'musl', { total: 3 });
    expect(res.lookups.outcomes).toEqual({ answer: 3 });
    expect(res.lookups.stalls.over1s).toBe(0);
    expect(res.lookups.cancelled).toBe(6); // each lookup's A and AAAA copies to the dead server
    expect(dead.stats.queries).toBe(6);
  });

  it('musl with every nameserver dead: each lookup takes its timeout, every copy counted as a timeout', async () => {
    const dead = await startResponder({ faults: [parseFault('drop')] });
    const res = await emulate([at(dead)], 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n', 'musl');
    expect(res.lookups.outcomes).toEqual({ timeout: 1 });
    // Resent every timeout/attempts = 500 ms: two rounds of A + AAAA.
    expect(res.engine).toMatchObject({ sent: 4, timeouts: 4, answered: 0 });
    expect(res.lookups.overTimeout).toBe(1);
  });

  it('no nameservers is a user error, not an internal one', async () => {
    await expect(runResolverEmulation({ conf: parseResolvConf('', { libc: 'glibc' }), nameservers: [], names: ['a.b'], concurrency: 1, total: 1, slowMs: 1000 })).rejects.toBeInstanceOf(UserError);
  });
});

describe('glibc send_dg: the wait per nameserver', () => {
  it('is (timeout << ns) / nscount seconds for ns > 0, at least 1 s, and a fractional timeout is kept', () => {
    // res_send.c: seconds = (statp->retrans << ns); if (ns > 0) seconds /= statp->nscount; if (seconds <= 0) seconds = 1;
    expect([0, 1, 2].map((ns) => glibcTryBudgetMs(5, ns, 3))).toEqual([5000, 3000, 6000]);
    expect([0, 1].map((ns) => glibcTryBudgetMs(1, ns, 3))).toEqual([1000, 1000]);
    expect([0, 1].map((ns) => glibcTryBudgetMs(2, ns, 2))).toEqual([2000, 2000]);
    expect(glibcTryBudgetMs(0.5, 0, 1)).toBe(500);
    expect(glibcTryBudgetMs(0.5, 1, 2)).toBe(500);
  });
});

const usable = await canUseNetns();
const newNetns = netnsPerTest();

describe.skipIf(!usable)('a network namespace without a route', () => {
  it('the README\'s headline command and resolver mode end in one line naming the server and ENETUNREACH, exit 2', async () => {
    const n = await newNetns('noroute');
    for (const args of [
      ['dnsbench', '-c', '100', '-n', '10000', '-d', 'google.com', '-s', '5', '--server', '10.96.0.10'],
      ['dnsbench', '--resolv', '-', '-n', '10'],
    ]) {
      const r = await n.exec(process.execPath, [BIN, ...args], { input: 'nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n' });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^k8sdiag: cannot reach 10\.96\.0\.10:53: no route to that network \(ENETUNREACH\)\nhint: /);
      expect(r.stderr).not.toMatch(/ERR_SOCKET|\n\s+at /);
    }
  });
});
