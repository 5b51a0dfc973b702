import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { Responder, parseFault } from '../../src/dns/responder.js';
import { UserError } from '../../src/errors.js';
import { ask, toReply } from '../helpers/udp.js';
import { startResponder } from '../helpers/responders.js';
import type { Reply } from '../helpers/udp.js';

/** One query over a fresh TCP connection. */
function askTcp(port: number, name: string): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const q = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] });
    const framed = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
    const c = net.connect(port, '127.0.0.1', () => c.write(framed));
    let acc = Buffer.alloc(0);
    c.on('data', (d) => {
      acc = Buffer.concat([acc, d]);
      if (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
        c.destroy();
        resolve(toReply(acc.subarray(2)));
      }
    });
    c.on('error', reject);
  });
}

const serve = (opts: ConstructorParameters<typeof Responder>[0] = {}): Promise<Responder> => startResponder(opts);

describe('Responder', () => {
  it('answers A and AAAA with its addresses, other types with no data', async () => {
    const r = await serve({ a: ['192.0.2.7'], aaaa: ['2001:db8::7'], ttl: 9 });
    const a = await ask(r.udpPort, 'Any.Name', 'A');
    expect(a?.rcode).toBe('NOERROR');
    expect(a?.id).toBe(4242);
    expect(a?.answers).toEqual([expect.objectContaining({ name: 'Any.Name', type: 'A', data: '192.0.2.7', ttl: 9 })]);
    expect((await ask(r.udpPort, 'x', 'AAAA'))?.answers?.[0]?.data).toBe('2001:db8::7');
    expect((await ask(r.udpPort, 'x', 'MX'))?.answers).toEqual([]);
    expect(r.seen.map((q) => `${q.name}/${q.type}/${q.action}`)).toEqual(['Any.Name/A/answer', 'x/AAAA/answer', 'x/MX/answer']);
  });

  it('zones: names outside are NXDOMAIN', async () => {
    const r = await serve({ zones: ['google.com.'] });
    expect((await ask(r.udpPort, 'google.com'))?.rcode).toBe('NOERROR');
    expect((await ask(r.udpPort, 'www.google.com'))?.rcode).toBe('NOERROR');
    expect((await ask(r.udpPort, 'google.com.svc.cluster.local'))?.rcode).toBe('NXDOMAIN');
    expect((await ask(r.udpPort, 'notgoogle.com'))?.rcode).toBe('NXDOMAIN');
  });

  it('name= limits a fault to the names under a suffix; a selector given twice is refused', async () => {
    const r = await serve({ faults: [parseFault('servfail@name=google.com')] });
    expect((await ask(r.udpPort, 'www.google.com'))?.rcode).toBe('SERVFAIL');
    expect((await ask(r.udpPort, 'google.com'))?.rcode).toBe('SERVFAIL');
    expect((await ask(r.udpPort, 'kubernetes.default.svc.cluster.local'))?.rcode).toBe('NOERROR');
    expect((await ask(r.udpPort, 'notgoogle.com'))?.rcode).toBe('NOERROR');
    expect(() => parseFault('drop@every=2,every=3')).toThrow(/every given twice/);
    expect(() => parseFault('drop@name=')).toThrow(/name needs a suffix/);
  });

  it('delayed replies held at once are bounded: past the bound a delayed query is dropped and counted', async () => {
    const r = await serve({ faults: [parseFault('delay:400')], maxDelayed: 5 });
    const { default: dgram } = await import('node:dgram');
    const c = dgram.createSocket('udp4');
    let answers = 0;
    c.on('message', () => answers++);
    await new Promise<void>((res) => c.bind(0, '127.0.0.1', () => res()));
    for (let id = 1; id <= 10; id++) {
      c.send(dnsPacket.encode({ type: 'query', id, questions: [{ name: `q${id}.test`, type: 'A', class: 'IN' }] }), r.udpPort, '127.0.0.1');
    }
    await new Promise((res) => setTimeout(res, 1200));
    c.close();
    expect(answers).toBe(5);
    expect(r.stats.actions).toMatchObject({ delay: 5, 'delay-overflow': 5 });
  });

  it('a TCP client that never reads its answers is not answered without end: the responder stops reading it', { timeout: 30_000 }, async () => {
    const r = await serve();
    const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'flood.test', type: 'A', class: 'IN' }] });
    const one = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
    const many = Buffer.concat(Array.from({ length: 200_000 }, () => one));
    const c = net.connect(r.tcpPort, '127.0.0.1');
    c.pause(); // never read
    c.on('error', () => undefined);
    await new Promise<void>((res) => c.once('connect', () => res()));
    c.write(many);
    // Until the kernel's buffers are full and the responder first holds an answer (a loaded machine takes longer
    // than an idle one), then a while longer: bounded in time either way.
    for (let t = 0; t < 150 && r.stats.tcpHeldMaxBytes === 0; t++) await new Promise((res) => setTimeout(res, 100));
    await new Promise((res) => setTimeout(res, 1000));
    const held = r.stats.tcpHeldMaxBytes;
    c.destroy();
    // Once the kernel's buffers are full, answers pile up in the responder's memory unless it stops reading the
    // client: with the pause, one answer past the high-water mark; without it, over 1 MiB within a second, and growing.
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(64 * 1024);
  });

  it('every=N applies a fault to exactly every Nth matching query', async () => {
    const r = await serve({ faults: [parseFault('servfail@every=3')] });
    const rcodes: string[] = [];
    for (let i = 0; i < 9; i++) rcodes.push((await ask(r.udpPort, 'x'))?.rcode ?? 'none');
    expect(rcodes).toEqual(['NOERROR', 'NOERROR', 'SERVFAIL', 'NOERROR', 'NOERROR', 'SERVFAIL', 'NOERROR', 'NOERROR', 'SERVFAIL']);
  });

  it('every=N counts UDP and TCP queries apart: interleaving the two does not move which queries it hits', async () => {
    const r = await serve({ faults: [parseFault('servfail@every=3')] });
    const udp: string[] = [];
    const tcp: string[] = [];
    for (let i = 0; i < 6; i++) {
      udp.push((await ask(r.udpPort, 'x'))?.rcode ?? 'none');
      tcp.push((await askTcp(r.tcpPort, 'x')).rcode ?? 'none');
    }
    const third = ['NOERROR', 'NOERROR', 'SERVFAIL', 'NOERROR', 'NOERROR', 'SERVFAIL'];
    expect(udp).toEqual(third);
    expect(tcp).toEqual(third);
  });

  it('type= limits a fault to one record type; drop sends nothing', async () => {
    const r = await serve({ faults: [parseFault('drop@type=AAAA')] });
    expect(await ask(r.udpPort, 'x', 'A')).toBeDefined();
    expect(await ask(r.udpPort, 'x', 'AAAA', { timeoutMs: 300 })).toBeUndefined();
    expect(r.stats.actions).toEqual({ answer: 1, drop: 1 });
  });

  it('delay, refused, nxdomain for a suffix', async () => {
    const r = await serve({ faults: [parseFault('delay:250@type=TXT'), parseFault('refused@type=MX'), parseFault('nxdomain:cluster.local')] });
    const t = performance.now();
    expect((await ask(r.udpPort, 'x', 'TXT'))?.rcode).toBe('NOERROR');
    expect(performance.now() - t).toBeGreaterThanOrEqual(240);
    expect((await ask(r.udpPort, 'x', 'MX'))?.rcode).toBe('REFUSED');
    expect((await ask(r.udpPort, 'a.svc.cluster.local'))?.rcode).toBe('NXDOMAIN');
    expect((await ask(r.udpPort, 'a.svc.example'))?.rcode).toBe('NOERROR');
  });

  it('wrong-id flips the top bit of the ID; wrong-question changes the name', async () => {
    const r = await serve({ faults: [parseFault('wrong-id@type=A'), parseFault('wrong-question@type=AAAA')] });
    expect((await ask(r.udpPort, 'x', 'A', { id: 0x0101 }))?.id).toBe(0x8101);
    expect((await ask(r.udpPort, 'x', 'AAAA'))?.questions?.[0]?.name).toBe('wrong-question.x');
  });

  it('truncate sets TC on UDP and answers in full over TCP', async () => {
    const r = await serve({ faults: [parseFault('truncate')] });
    const udp = await ask(r.udpPort, 'x');
    expect(udp?.flag_tc).toBe(true);
    expect(udp?.answers).toEqual([]);
    const reply = await askTcp(r.tcpPort, 'x');
    expect(reply.flag_tc).toBe(false);
    expect(reply.answers?.[0]?.data).toBe('192.0.2.1');
  });

  it('answers FORMERR to a malformed query and counts it', async () => {
    const r = await serve();
    const raw = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3f, 0x61]);
    const reply = await ask(r.udpPort, '', 'A', { raw });
    expect(reply?.rcode).toBe('FORMERR');
    expect(reply?.id).toBe(0x1234);
    expect(r.stats.malformed).toBe(1);
  });

  it('listens on IPv6 loopback', async () => {
    const r = await serve({ host: '::1' });
    expect((await ask(r.udpPort, 'v6.test', 'AAAA', { host: '::1' }))?.answers?.[0]?.data).toBe('2001:db8::1');
  });

  it('rejects bad fault specs with a user error', () => {
    for (const bad of ['explode', 'delay', 'delay:abc', 'nxdomain', 'drop:5', 'drop@every=0', 'drop@fraction=2', 'drop@type=BOGUS', 'drop@when=now']) {
      expect(() => parseFault(bad), bad).toThrow(UserError);
    }
    expect(parseFault('delay:5000@every=100,type=AAAA')).toMatchObject({ kind: 'delay', ms: 5000, every: 100, type: 'AAAA' });
  });
});
