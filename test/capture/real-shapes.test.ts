/**
 * watch on the shapes real captures have that a lab's do not: a total outage (a client asking again and again, never
 * answered), queries still waiting when the capture ends, a capture with no DNS in it, TCP connections whose start the
 * capture missed, lost and reordered segments, the link types tcpdump writes for raw IP and NFLOG, and fragmented
 * answers. Each capture is written here frame by frame (test/helpers/pcap.ts); where tshark is installed it reads the
 * same file as the independent count of DNS messages.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { ACK, PSH, SYN, dnsAnswer, dnsQuery, ethernet, framed, ipv4, ipv6, nflog, pcap, tcp, udp } from '../helpers/pcap.js';
import type { Frame } from '../helpers/pcap.js';
import { TOOLS, gate, titled } from '../helpers/tools.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-shapes-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const CLIENT = [10, 244, 1, 5];
const NS1 = [10, 96, 0, 10];
const NS2 = [10, 96, 0, 11];
const S = 1_000_000;

type Doc = {
  queries: number; answered: number; unanswered: number; resends: number; late: number; inFlightAtEnd: number;
  inFlightWaitsMs: { min: number; median: number; max: number; longerThanAnyAnswer: number } | null;
  capture: { skipped: Record<string, number>; packets: number };
  findings: Array<{ code: string; severity: string; message: string; evidence: Record<string, unknown> }>;
};

async function watch(name: string, file: Buffer, args: string[] = []): Promise<{ code: number; doc: Doc; stderr: string; line: string }> {
  const path = join(dir, name);
  writeFileSync(path, file);
  const r = await run(['watch', '--pcap', path, '--json', ...args]);
  const line = await run(['watch', '--pcap', path, '-o', 'line', ...args]);
  return { code: r.exitCode, doc: r.stdout.trim() === '' ? (undefined as unknown as Doc) : (JSON.parse(r.stdout) as Doc), stderr: r.stderr, line: line.stdout.trim() };
}

const udpQuery = (at: number, dst: number[], port: number, id: number, name: string): Frame => ({ us: at, data: ethernet(ipv4(CLIENT, dst, 17, udp(port, 53, dnsQuery(id, name)))) });
const udpAnswer = (at: number, src: number[], port: number, id: number, name: string): Frame => ({ us: at, data: ethernet(ipv4(src, CLIENT, 17, udp(53, port, dnsAnswer(id, name)))) });

describe('a total outage is never healthy', () => {
  it('one question asked 7 times over 8 s of two servers, never answered: unanswered, a finding, exit 1', async () => {
    // glibc with two nameservers, timeout:1 attempts:4, as it sends: alternately, one socket per server.
    const frames: Frame[] = [];
    for (let k = 0; k < 7; k++) frames.push(udpQuery(10 * S + Math.round(k * 1.2 * S), k % 2 === 0 ? NS1 : NS2, k % 2 === 0 ? 40001 : 40002, 0x1234, 'api.example.com'));
    const { code, doc, line } = await watch('outage.pcap', pcap(frames));
    expect(code).toBe(1);
    expect(doc.answered).toBe(0);
    // One query per server socket; every one unanswered, none in flight at the end.
    expect(doc.queries).toBe(2);
    expect(doc.unanswered).toBe(2);
    expect(doc.inFlightAtEnd).toBe(0);
    expect(doc.findings.map((f) => f.code)).toContain('QUERY_STALLS');
    expect(line).not.toMatch(/^OK/);
  });

  it('a query resent after it was given up is still that query: one unanswered, its resends counted, none new', async () => {
    const frames: Frame[] = [];
    // --timeout 2; the client keeps resending every 1.5 s for 9 s from the same port and ID.
    for (let k = 0; k < 7; k++) frames.push(udpQuery(10 * S + k * 1.5 * S, NS1, 40001, 7, 'db.example.com'));
    // Other traffic answered, so the capture goes on past the last resend's timeout.
    for (let k = 0; k < 30; k++) frames.push(udpQuery(10 * S + k * 0.5 * S, NS1, 41000 + k, 100 + k, `ok${k}.example.com`), udpAnswer(10 * S + k * 0.5 * S + 1000, NS1, 41000 + k, 100 + k, `ok${k}.example.com`));
    frames.sort((a, b) => a.us - b.us);
    const { doc } = await watch('resent.pcap', pcap(frames), ['--timeout', '2']);
    expect(doc.queries).toBe(31);
    expect(doc.unanswered).toBe(1);
    expect(doc.resends).toBe(6);
    expect(doc.answered).toBe(30);
  });

  it('at the end, a query that waited the timeout is unanswered; those that waited less are apart, with their waits, and a finding when no answer took that long', async () => {
    const frames: Frame[] = [];
    // 200 queries answered in 1 ms over 20 s.
    for (let k = 0; k < 200; k++) frames.push(udpQuery(10 * S + k * 0.1 * S, NS1, 30000 + k, k, `n${k}.example.com`), udpAnswer(10 * S + k * 0.1 * S + 1000, NS1, 30000 + k, k, `n${k}.example.com`));
    // 6 s before the end: one query never answered (the timeout is 5 s): unanswered. 2-3 s before: 5 still waiting.
    const end = 10 * S + 200 * 0.1 * S;
    frames.push(udpQuery(end - 6 * S, NS1, 50000, 9000, 'gone.example.com'));
    for (let k = 0; k < 5; k++) frames.push(udpQuery(end - 3 * S + k * 0.2 * S, NS1, 50001 + k, 9001 + k, `wait${k}.example.com`));
    frames.push(udpQuery(end, NS1, 50010, 9100, 'last.example.com'), udpAnswer(end + 900, NS1, 50010, 9100, 'last.example.com'));
    frames.sort((a, b) => a.us - b.us);
    const { code, doc } = await watch('end.pcap', pcap(frames));
    expect(doc.unanswered).toBe(1);
    expect(doc.inFlightAtEnd).toBe(5);
    expect(doc.inFlightWaitsMs).toMatchObject({ longerThanAnyAnswer: 5 });
    expect(doc.inFlightWaitsMs!.min).toBeGreaterThanOrEqual(2000);
    expect(doc.inFlightWaitsMs!.max).toBeLessThanOrEqual(3001);
    const f = doc.findings.find((x) => x.code === 'WAITING_AT_END');
    expect(f?.message).toMatch(/^5 queries were still unanswered when the capture ended/);
    expect(code).toBe(1);
  });

  it('a few queries waiting at the end no longer than the answers took: no finding', async () => {
    const frames: Frame[] = [];
    for (let k = 0; k < 100; k++) frames.push(udpQuery(10 * S + k * 0.1 * S, NS1, 30000 + k, k, `n${k}.example.com`), udpAnswer(10 * S + k * 0.1 * S + (k % 10) * 100_000, NS1, 30000 + k, k, `n${k}.example.com`));
    const end = 10 * S + 100 * 0.1 * S + 1_000_000;
    for (let k = 0; k < 3; k++) frames.push(udpQuery(end - 300_000 + k * 1000, NS1, 50001 + k, 9001 + k, `wait${k}.example.com`));
    frames.push(udpQuery(end, NS1, 50010, 9100, 'last.example.com'), udpAnswer(end + 900, NS1, 50010, 9100, 'last.example.com'));
    frames.sort((a, b) => a.us - b.us);
    const { doc } = await watch('end-fine.pcap', pcap(frames));
    expect(doc.inFlightAtEnd).toBe(3);
    expect(doc.findings.map((x) => x.code)).not.toContain('WAITING_AT_END');
  });
});

describe('a capture with no DNS in it', () => {
  it('is an input error that says what it held, exit 2, never "OK"', async () => {
    const frames: Frame[] = [];
    for (let k = 0; k < 10; k++) frames.push({ us: 10 * S + k, data: ethernet(ipv4(CLIENT, NS1, 17, udp(40000 + k, 123, Buffer.alloc(48)))) });
    const path = join(dir, 'ntp.pcap');
    writeFileSync(path, pcap(frames));
    const r = await run(['watch', '--pcap', path]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`k8sdiag: ${path}: no DNS message in it: 10 packets, none DNS (skipped: not-dns-port 10)`);
    const empty = join(dir, 'empty.pcap');
    writeFileSync(empty, pcap([]));
    const e = await run(['watch', '--pcap', empty, '-o', 'line']);
    expect(e.exitCode).toBe(2);
    expect(e.stdout).toBe('');
    expect(e.stderr).toMatch(/no DNS message in it: no packets/);
  });
});

/** One TCP connection carrying `n` lookups, each query and each answer in a segment of its own (the handshake first). */
function tcpConversation(n: number, t0: number): Array<Frame & { role: 'handshake' | 'query' | 'answer'; k: number }> {
  const out: Array<Frame & { role: 'handshake' | 'query' | 'answer'; k: number }> = [];
  let cseq = 1000;
  let sseq = 900_000;
  const c2s = (flags: number, payload: Buffer): Buffer => ethernet(ipv4(CLIENT, NS1, 6, tcp(45000, 53, cseq, flags, payload, sseq)));
  const s2c = (flags: number, payload: Buffer): Buffer => ethernet(ipv4(NS1, CLIENT, 6, tcp(53, 45000, sseq, flags, payload, cseq)));
  out.push({ us: t0, data: c2s(SYN, Buffer.alloc(0)), role: 'handshake', k: -1 });
  cseq++;
  out.push({ us: t0 + 100, data: s2c(SYN | ACK, Buffer.alloc(0)), role: 'handshake', k: -1 });
  sseq++;
  out.push({ us: t0 + 200, data: c2s(ACK, Buffer.alloc(0)), role: 'handshake', k: -1 });
  for (let k = 0; k < n; k++) {
    const at = t0 + 1000 + k * 20_000;
    const q = framed(dnsQuery(k + 1, `svc${k}.example.com`));
    out.push({ us: at, data: c2s(PSH | ACK, q), role: 'query', k });
    cseq += q.length;
    const a = framed(dnsAnswer(k + 1, `svc${k}.example.com`));
    out.push({ us: at + 500, data: s2c(PSH | ACK, a), role: 'answer', k });
    sseq += a.length;
  }
  return out;
}

const tshark = await gate({}, TOOLS.tshark);
/** tshark's count of DNS queries and answers in a file: the independent reader. */
async function tsharkCounts(path: string): Promise<{ queries: number; answers: number }> {
  // Each segment read on its own (every one here carries whole messages): tshark's stream analysis would hold the
  // data after a lost segment back for good.
  const r = await execa('tshark', ['-n', '-r', path, '-Y', 'dns', '-T', 'fields', '-e', 'dns.flags.response', '-o', 'tcp.desegment_tcp_streams:FALSE', '-o', 'tcp.analyze_sequence_numbers:FALSE'], { reject: false });
  const flags = String(r.stdout).split('\n').filter((l) => l.trim() !== '').flatMap((l) => l.split(','));
  return { queries: flags.filter((f) => f === '0' || f === 'False').length, answers: flags.filter((f) => f === '1' || f === 'True').length };
}

describe('DNS over TCP as real captures have it', () => {
  it('a connection whose handshake is not in the capture (a rotated file, a connection already open): every lookup read', async () => {
    const frames = tcpConversation(41, 10 * S).slice(3);
    const { code, doc } = await watch('tcp-nosyn.pcap', pcap(frames));
    expect(doc.queries).toBe(41);
    expect(doc.answered).toBe(41);
    expect(doc.capture.skipped['tcp-no-start'] ?? 0).toBe(0);
    expect(code).toBe(0);
  });

  it('a segment cut mid-message at the capture\'s start is skipped and counted; reading starts at the next message', async () => {
    const frames = tcpConversation(5, 10 * S).slice(3);
    // The first query's segment as if the capture began inside it: its second half only.
    const first = frames[0]!;
    const ipStart = 14;
    const tcpStart = ipStart + 20;
    const payload = first.data.subarray(tcpStart + 20);
    const half = payload.subarray(10);
    const seq = first.data.readUInt32BE(tcpStart + 4) + 10;
    frames[0] = { ...first, data: ethernet(ipv4(CLIENT, NS1, 6, tcp(45000, 53, seq, PSH | ACK, half))) };
    const { doc } = await watch('tcp-midmessage.pcap', pcap(frames));
    expect(doc.capture.skipped['tcp-no-start']).toBe(1);
    expect(doc.queries).toBe(4);
    expect(doc.answered).toBe(4);
  });

  it.skipIf(!tshark.ok)(titled('one answer segment lost and three reordered: the rest read as tshark reads them, the loss the capture\'s, not the server\'s', tshark), async () => {
    const frames = tcpConversation(41, 10 * S);
    const answers = frames.filter((f) => f.role === 'answer');
    const lost = answers[20]!;
    const kept = frames.filter((f) => f !== lost);
    // Queries 5, 6 and 7 pipelined, their answers seen in reverse order just after query 7 (a capture on a bond, or
    // the kernel's own reordering), the capture's time still running forward.
    const late = [answers[7]!, answers[6]!, answers[5]!];
    for (const a of late) kept.splice(kept.indexOf(a), 1);
    const q7 = kept.findIndex((f) => f.role === 'query' && f.k === 7);
    kept.splice(q7 + 1, 0, ...late.map((a, i) => ({ ...a, us: kept[q7]!.us + 100 + i })));
    const path = join(dir, 'tcp-gap.pcap');
    writeFileSync(path, pcap(kept));
    const { code, doc } = await watch('tcp-gap.pcap', pcap(kept));
    const ts = await tsharkCounts(path);
    expect(ts).toEqual({ queries: 41, answers: 40 });
    expect(doc.queries).toBe(ts.queries);
    expect(doc.answered).toBe(ts.answers);
    expect(doc.unanswered + doc.inFlightAtEnd).toBe(1);
    expect(doc.capture.skipped['tcp-gap']).toBe(1);
    const codes = doc.findings.map((f) => f.code);
    expect(codes).toContain('CAPTURE_LOSS');
    expect(codes).not.toContain('QUERY_STALLS');
    expect(code).toBe(1);
  });
});

const V6_CLIENT = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
const V6_NS = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10];

/** `n` UDP lookups of one IP version as IP packets (no link layer), each answered 1 ms later. */
function ipExchanges(n: number, v: 4 | 6): Array<{ us: number; ip: Buffer }> {
  const out: Array<{ us: number; ip: Buffer }> = [];
  for (let k = 0; k < n; k++) {
    const at = 10 * S + k * 10_000;
    const q = udp(33000 + k, 53, dnsQuery(k + 1, `l${k}.example.com`));
    const a = udp(53, 33000 + k, dnsAnswer(k + 1, `l${k}.example.com`));
    out.push({ us: at, ip: v === 4 ? ipv4(CLIENT, NS1, 17, q) : ipv6(V6_CLIENT, V6_NS, 17, q) });
    out.push({ us: at + 1000, ip: v === 4 ? ipv4(NS1, CLIENT, 17, a) : ipv6(V6_NS, V6_CLIENT, 17, a) });
  }
  return out;
}

/** An IP packet's payload cut into fragments of `size` bytes (a multiple of 8), as IPv4 or IPv6 fragments. */
function fragments(v: 4 | 6, src: number[], dst: number[], payload: Buffer, size: number, id: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < payload.length; off += size) {
    const part = payload.subarray(off, off + size);
    const more = off + size < payload.length;
    out.push(v === 4 ? ipv4(src, dst, 17, part, { id, frag: (more ? 0x2000 : 0) | (off / 8) }) : ipv6(src, dst, 17, part, { id, offset: off, more }));
  }
  return out;
}

describe('link types and fragments', () => {
  it.skipIf(!tshark.ok)(titled('raw IPv4 (228), raw IPv6 (229) and NFLOG (239): every lookup read, as tshark reads them', tshark), async () => {
    for (const [name, link, frames] of [
      ['raw4', 228, ipExchanges(20, 4).map((f) => ({ us: f.us, data: f.ip }))],
      ['raw6', 229, ipExchanges(20, 6).map((f) => ({ us: f.us, data: f.ip }))],
      ['nflog4', 239, ipExchanges(20, 4).map((f) => ({ us: f.us, data: nflog(f.ip) }))],
      ['nflog6', 239, ipExchanges(20, 6).map((f) => ({ us: f.us, data: nflog(f.ip) }))],
    ] as const) {
      const path = join(dir, `${name}.pcap`);
      writeFileSync(path, pcap([...frames], link));
      expect(await tsharkCounts(path), name).toEqual({ queries: 20, answers: 20 });
      const { code, doc } = await watch(`${name}.pcap`, pcap([...frames], link));
      expect([doc.queries, doc.answered, code], name).toEqual([20, 20, 0]);
    }
  });

  it.skipIf(!tshark.ok)(titled('large answers over UDP in IPv4 and IPv6 fragments, some out of order: put back together and read, as tshark reads them; one never whole: given up and counted', tshark), async () => {
    const frames: Frame[] = [];
    let at = 10 * S;
    for (let k = 0; k < 6; k++) {
      const v = k % 2 === 0 ? 4 : 6;
      const [c, ns] = v === 4 ? [CLIENT, NS1] : [V6_CLIENT, V6_NS];
      const name = `big${k}.example.com`;
      const q = udp(34000 + k, 53, dnsQuery(k + 1, name, 'TXT'));
      frames.push({ us: at, data: ethernet(v === 4 ? ipv4(c, ns, 17, q) : ipv6(c, ns, 17, q)) });
      const parts = fragments(v, ns, c, udp(53, 34000 + k, dnsAnswer(k + 1, name, 'TXT', 3000)), 1232, 500 + k);
      if (k === 1) parts.reverse(); // the last fragment first
      if (k === 5) parts.splice(1, 1); // a fragment lost: never whole
      for (const [i, part] of parts.entries()) frames.push({ us: at + 1000 + i, data: ethernet(part) });
      at += 100_000;
    }
    const path = join(dir, 'frag.pcap');
    writeFileSync(path, pcap(frames));
    expect(await tsharkCounts(path)).toEqual({ queries: 6, answers: 5 });
    const { doc } = await watch('frag.pcap', pcap(frames));
    expect(doc.queries).toBe(6);
    expect(doc.answered).toBe(5);
    expect(doc.capture.skipped['ip-fragment-lost']).toBe(1);
  });
});

describe('a damaged capture', () => {
  it('says at which byte the damaged record starts, not where the chunk it arrived in did', async () => {
    const frames = ipExchanges(50, 4).map((f) => ({ us: f.us, data: ethernet(f.ip) }));
    const good = pcap(frames);
    // Record 30's length field overwritten with more than any snap length.
    let at = 24;
    for (let k = 0; k < 30; k++) at += 16 + good.readUInt32LE(at + 8);
    const bad = Buffer.from(good);
    bad.writeUInt32LE(0x7fffffff, at + 8);
    const { doc } = await watch('damaged.pcap', bad);
    expect(doc.queries + doc.answered).toBeGreaterThan(0);
    const loss = doc.findings.find((f) => f.code === 'CAPTURE_LOSS');
    expect(loss?.message).toContain(`(at byte ${at})`);
  });
});

describe('many clients', () => {
  it('counts every client exactly, shows the most troubled 1,000 first, and gives percentiles only to the first 100 seen', async () => {
    const frames: Frame[] = [];
    // 1,500 clients, one lookup each answered in 2 ms; the last 5 of them (past the first 1,000) never answered.
    for (let k = 0; k < 1500; k++) {
      const client = [10, 9, k >> 8, k & 0xff];
      const at = 10 * S + k * 1000;
      frames.push({ us: at, data: ethernet(ipv4(client, NS1, 17, udp(40000, 53, dnsQuery(k + 1, `c${k}.example.com`)))) });
      if (k < 1495) frames.push({ us: at + 2000, data: ethernet(ipv4(NS1, client, 17, udp(53, 40000, dnsAnswer(k + 1, `c${k}.example.com`)))) });
      // 100 clients past the first 1,000 ask twice: busier, so shown before the one-lookup clients.
      if (k >= 1000 && k < 1100) {
        frames.push({ us: at + 500, data: ethernet(ipv4(client, NS1, 17, udp(40001, 53, dnsQuery(k + 1, `d${k}.example.com`)))) });
        frames.push({ us: at + 500 + 3000, data: ethernet(ipv4(NS1, client, 17, udp(53, 40001, dnsAnswer(k + 1, `d${k}.example.com`)))) });
      }
    }
    frames.push(udpQuery(30 * S, NS1, 41000, 9999, 'end.example.com'), udpAnswer(30 * S + 100, NS1, 41000, 9999, 'end.example.com'));
    frames.sort((a, b) => a.us - b.us);
    const { doc } = await watch('clients.pcap', pcap(frames));
    const d = doc as Doc & { clients: { seen: number; shown: number; withPercentiles: number }; byClient: Record<string, { queries: number; unanswered: number; latencyMs: { p50: number | null; min: number; mean: number; max: number } | null }> };
    expect(d.clients.seen).toBe(1501);
    expect(d.clients.shown).toBe(1000);
    expect(Object.keys(d.byClient)).toHaveLength(1000);
    expect(d.queries).toBe(1601);
    expect(d.unanswered).toBe(5);
    // The five that stalled are shown, though they came last.
    for (let k = 1495; k < 1500; k++) expect(d.byClient[`10.9.${k >> 8}.${k & 0xff}`]?.unanswered).toBe(1);
    // A busy client past the first 100 seen: exact min, mean and max of its two answers, no percentiles.
    expect(d.byClient['10.9.3.232']).toMatchObject({ queries: 2, latencyMs: { min: 2, mean: 2.5, max: 3, p50: null } });
    expect(d.clients.withPercentiles).toBe(100);
    expect(d.byClient['10.9.0.99']?.latencyMs?.p50).toBeCloseTo(2, 0);
    expect(d.byClient['10.9.0.100']?.latencyMs).toMatchObject({ min: 2, max: 2, p50: null });
  });
});

describe('gzip captures and PPPoE', () => {
  const lookups = (n: number): Frame[] => {
    const frames: Frame[] = [];
    for (let k = 0; k < n; k++) frames.push(udpQuery(10 * S + k * 10_000, NS1, 30000 + k, k, `g${k}.example.com`), udpAnswer(10 * S + k * 10_000 + 700, NS1, 30000 + k, k, `g${k}.example.com`));
    return frames;
  };

  it('a gzip capture (tcpdump -z gzip) is read as the capture it holds, from a file and from stdin', async () => {
    const plain = pcap(lookups(200));
    const gz = gzipSync(plain);
    const a = await watch('plain.pcap', plain);
    const b = await watch('rotated.pcap.gz', gz);
    expect(b.code).toBe(0);
    expect(b.doc.queries).toBe(200);
    expect(b.doc.answered).toBe(200);
    expect((b.doc.capture as { compression?: string }).compression).toBe('gzip');
    expect(b.doc.capture.packets).toBe(a.doc.capture.packets);
    const piped = await run(['watch', '--pcap', '-', '--json'], { input: gz });
    expect((JSON.parse(piped.stdout) as Doc).answered).toBe(200);
  });

  it('a gzip stream cut short: what it held is read and the cut is said; damaged gzip: one line, exit 2', async () => {
    const gz = gzipSync(pcap(lookups(2000)));
    const cut = await watch('cut.pcap.gz', gz.subarray(0, Math.floor(gz.length * 0.6)));
    expect(cut.doc.answered).toBeGreaterThan(100);
    expect(cut.doc.answered).toBeLessThan(2000);
    expect((cut.doc.capture as { damaged?: string }).damaged).toMatch(/gzip stream is cut short/);
    const path = join(dir, 'junk.gz');
    writeFileSync(path, Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from('not gzip at all')]));
    const r = await run(['watch', '--pcap', path]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^k8sdiag: .*junk\.gz: its gzip stream is damaged/);
  });

  it('DNS over PPPoE (a PPP session inside Ethernet): read', async () => {
    const pppoe = (ip: Buffer): Buffer => {
      const h = Buffer.alloc(22);
      h.writeUInt16BE(0x8864, 12);
      h[14] = 0x11; // version 1, type 1
      h.writeUInt16BE(0x3b1a, 16); // session
      h.writeUInt16BE(ip.length + 2, 18);
      h.writeUInt16BE(ip[0]! >> 4 === 6 ? 0x0057 : 0x0021, 20);
      return Buffer.concat([h, ip]);
    };
    const frames = lookups(5).map((f) => ({ us: f.us, data: pppoe(f.data.subarray(14)) }));
    const { code, doc } = await watch('pppoe.pcap', pcap(frames));
    expect(code).toBe(0);
    expect(doc.answered).toBe(5);
  });
});
