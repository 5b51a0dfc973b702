/**
 * The engine at its edges, against real sockets on loopback: IDs, duplicated
 * replies, refusals with many in flight, TCP retries that fail or hang, local
 * receive-buffer drops, several sockets.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import * as dnsPacket from 'dns-packet';
import { runEngine } from '../../src/engine/engine.js';
import { fromEngine } from '../../src/commands/dnsbench.js';
import type { DnsbenchInput } from '../../src/commands/dnsbench.js';
import { parseFault } from '../../src/dns/responder.js';
import { engineOptions } from '../helpers/engine.js';
import { startResponder } from '../helpers/responders.js';
import { closedUdpPort, rawServer } from '../helpers/servers.js';


function accounted(res: { sent: number; answered: number; timeouts: number; errors: Record<string, number> }): void {
  const errors = Object.values(res.errors).reduce((a, b) => a + b, 0);
  expect(res.sent, 'sent = answered + timeouts + errors').toBe(res.answered + res.timeouts + errors);
}

describe('engine edges', () => {
  it('message IDs: all 65,536 are used, and none again before all others (FIFO free list)', async () => {
    const r = await startResponder();
    const res = await runEngine(engineOptions(r.udpPort, { total: 70_000, concurrency: 100 }));
    expect(res.answered).toBe(70_000);
    const ids = r.seen.map((q) => q.id);
    expect(new Set(ids.slice(0, 65_536)).size).toBe(65_536);
    // An answered ID comes back last: the 65,537th query reuses the first query's ID at the earliest.
    const firstUse = new Map<number, number>();
    let minGap = Number.POSITIVE_INFINITY;
    ids.forEach((id, i) => {
      const prev = firstUse.get(id);
      if (prev !== undefined) minGap = Math.min(minGap, i - prev);
      firstUse.set(id, i);
    });
    expect(minGap).toBeGreaterThanOrEqual(65_536 - 100);
  });

  it('a duplicated reply never completes another query: every duplicate is counted as an unknown ID', async () => {
    // A server that answers every query twice, back to back.
    const srv = await rawServer((msg, reply) => {
      const q = dnsPacket.decode(msg);
      const out = dnsPacket.encode({ type: 'response', id: q.id ?? 0, flags: dnsPacket.RECURSION_DESIRED, questions: q.questions ?? [], answers: [] });
      reply(out);
      reply(out);
    });
    try {
      const res = await runEngine(engineOptions(srv.port, { total: 500, concurrency: 20, qps: 5000 }));
      accounted(res);
      expect(res).toMatchObject({ sent: 500, answered: 500, timeouts: 0, late: 0 });
      // The last copy may still be on its way when the run ends.
      expect(res.wrongId).toBeLessThanOrEqual(500);
      expect(res.wrongId).toBeGreaterThanOrEqual(499);
      expect(res.histogram.count).toBe(500);
    } finally {
      await srv.close();
    }
  });

  it('spreads queries round-robin over --sockets source ports', async () => {
    const r = await startResponder();
    const res = await runEngine(engineOptions(r.udpPort, { total: 400, concurrency: 8, sockets: 4 }));
    expect(res.sourcePorts).toBe(4);
    const perPort = new Map<number, number>();
    for (const q of r.seen) perPort.set(q.port, (perPort.get(q.port) ?? 0) + 1);
    expect([...perPort.values()]).toEqual([100, 100, 100, 100]);
  });

  it('a closed port with 100 in flight: every query a refusal, none a timeout', async () => {
    const port = await closedUdpPort();
    for (const sockets of [1, 3]) {
      const res = await runEngine(engineOptions(port, { total: 1000, concurrency: 100, timeoutMs: 300, sockets }));
      accounted(res);
      expect(res.timeouts, `sockets ${sockets}`).toBe(0);
      expect(res.errors).toEqual({ ECONNREFUSED: 1000 });
    }
  });

  it('a TCP retry that is refused is an error of its query, exactly', async () => {
    const r = await startResponder({ tcp: false, faults: [parseFault('truncate@every=4')] });
    const res = await runEngine(engineOptions(r.udpPort, { tcpRetry: true }));
    accounted(res);
    expect(res).toMatchObject({ sent: 200, answered: 150, truncated: 50, tcpRetries: 50, timeouts: 0 });
    expect(res.errors).toEqual({ 'tcp-ECONNREFUSED': 50 });
  });

  it('a server that sets TC and never answers over TCP: each retry times out and is closed; the run ends', async () => {
    // A TCP listener on the UDP responder's port number that accepts and never answers. Another test may hold that
    // TCP port already (the responder took only the UDP one): then another responder, another port.
    const conns = new Set<net.Socket>();
    const tcp = net.createServer((s) => {
      s.resume(); // read the query, never answer
      conns.add(s);
      s.on('close', () => conns.delete(s));
    });
    let udp = await startResponder({ tcp: false, faults: [parseFault('truncate')] });
    for (let attempt = 1; ; attempt++) {
      const port = udp.udpPort;
      const listening = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (listening) break;
      if (attempt === 5) throw new Error('no port free on both UDP and TCP after 5 tries');
      udp = await startResponder({ tcp: false, faults: [parseFault('truncate')] });
    }
    try {
      const res = await runEngine(engineOptions(udp.udpPort, { total: 5, concurrency: 5, timeoutMs: 300, tcpRetry: true }));
      accounted(res);
      expect(res).toMatchObject({ sent: 5, answered: 0, timeouts: 5, tcpRetries: 5 });
      // The run ends within the timeout (UDP try, then the TCP retry's own), with room for a loaded machine; a run that
      // waited for anything else (a default 5 s timeout, a connection never closed) would be far over it.
      expect(res.durationMs).toBeLessThan(2 * 300 + 3000);
      // Every retry connection was destroyed when its query timed out.
      await new Promise((r) => setTimeout(r, 100));
      expect(conns.size).toBe(0);
    } finally {
      for (const s of conns) s.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    }
  });

  it('replies dropped by a full receive buffer are reported as local drops and explain the timeouts', async () => {
    // Collect 300 queries, then answer them all at once into an 8 KiB receive buffer.
    const pending: Array<[Buffer, (b: Buffer) => void]> = [];
    const srv = await rawServer((msg, reply) => {
      pending.push([msg, reply]);
      if (pending.length === 300) {
        for (const [m, rep] of pending.splice(0)) {
          const q = dnsPacket.decode(m);
          rep(dnsPacket.encode({ type: 'response', id: q.id ?? 0, questions: q.questions ?? [], answers: [] }));
        }
      }
    });
    expect(pending.length).toBe(0);
    try {
      const res = await runEngine(engineOptions(srv.port, { total: 300, concurrency: 300, sockets: 1, timeoutMs: 500, recvBufferBytes: 4096 }));
      accounted(res);
      expect(res.timeouts).toBeGreaterThan(100);
      expect(res.localDrops.ownSockets).toBe(res.timeouts);
      expect(res.localDrops.namespace?.rcvbufErrors ?? 0).toBeGreaterThanOrEqual(res.timeouts);
      const input: DnsbenchInput = { ...engineOptions(srv.port), tcpRetry: false };
      const result = fromEngine(input, res, null);
      const codes = result.findings.map((f) => f.code);
      expect(codes).toContain('LOCAL_DROPS');
      const timeouts = result.findings.find((f) => f.code === 'TIMEOUTS')!;
      expect(timeouts.message).toMatch(/dropped by this machine's receive buffers/);
      expect(timeouts.remedy).not.toMatch(/conntrack/);
    } finally {
      await srv.close();
    }
  });

  it('a healthy run reports no local drops and one row per source port', async () => {
    const r = await startResponder();
    const res = await runEngine(engineOptions(r.udpPort, { total: 2000, concurrency: 200 }));
    expect(res.localDrops.ownSockets).toBe(0);
    expect(res.sourcePorts).toBe(256);
    expect(new Set(r.seen.map((q) => q.port)).size).toBe(256);
  });
});

describe('UDP sockets used by tests', () => {
  it('closedUdpPort is closed: a datagram there is refused', async () => {
    const port = await closedUdpPort();
    const s = dgram.createSocket('udp4');
    const err = await new Promise<string>((resolve) => {
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''));
      s.connect(port, '127.0.0.1', () => s.send(Buffer.from('x')));
    });
    s.close();
    expect(err).toBe('ECONNREFUSED');
  });
});
