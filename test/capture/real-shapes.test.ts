/**
 * watch on the shapes real captures have that a lab's do not: a total outage (a client asking again and again, never
 * answered), queries still waiting when the capture ends, a capture with no DNS in it, TCP connections whose start the
 * capture missed, lost and reordered segments, the link types tcpdump writes for raw IP and NFLOG, and fragmented
 * answers. Each capture is written here frame by frame (test/helpers/pcap.ts); where tshark is installed it reads the
 * same file as the independent count of DNS messages.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
