/**
 * watch's RACE_SIGNATURE against its null, on captures written here frame by frame (Ethernet, IPv4, UDP, DNS): the
 * pairs' first sends are compared with the lone queries' first sends, and only queries whose second left before the
 * first's answer came back are a pair. Loss that hits every first send alike, 10% of them, is no race; sequential
 * single-request lookups are no pairs at all.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { ethernet, ipv4, pcap as writePcap, udp } from '../helpers/pcap.js';
import type { Frame } from '../helpers/pcap.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-race-null-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const CLIENT = [10, 244, 1, 5];
const SERVER = [10, 96, 0, 10];

/** One Ethernet/IPv4/UDP frame carrying `payload`. */
const frame = (src: number[], sport: number, dst: number[], dport: number, payload: Buffer): Buffer => ethernet(ipv4(src, dst, 17, udp(sport, dport, payload)));
/** The frames in time order, as a capture holds them. */
const pcap = (frames: Frame[]): Buffer => writePcap([...frames].sort((a, b) => a.us - b.us));

type Q = { at: number; port: number; id: number; type: 'A' | 'AAAA'; lostFirst: boolean; name: string };

/** A query, resent from the same port 1 s later when its first send is lost, and its answer 2 ms after the send it answers. */
function exchange(q: Q): Array<{ us: number; data: Buffer }> {
  const question = [{ type: q.type, name: q.name, class: 'IN' as const }];
  const query = dnsPacket.encode({ type: 'query', id: q.id, flags: dnsPacket.RECURSION_DESIRED, questions: question });
  const answer = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: question, answers: [] });
  const out = [{ us: q.at, data: frame(CLIENT, q.port, SERVER, 53, query) }];
  const answered = q.lostFirst ? q.at + 1_000_000 : q.at;
  if (q.lostFirst) out.push({ us: answered, data: frame(CLIENT, q.port, SERVER, 53, query) });
  out.push({ us: answered + 2000, data: frame(SERVER, 53, CLIENT, q.port, answer) });
  return out;
}

async function watchOf(name: string, frames: Array<{ us: number; data: Buffer }>): Promise<{ pairs: number; lone: number; loneFirstLost: number; raceSignature: number; findings: Array<{ code: string; severity: string; evidence: Record<string, unknown> }> }> {
  const file = join(dir, name);
  writeFileSync(file, pcap(frames));
  const r = await run(['watch', '--pcap', file, '--json', '--timeout', '2']);
  expect(r.exitCode, r.stderr).not.toBe(2);
  return JSON.parse(r.stdout);
}

describe("watch's race signature against its null", () => {
  it('10% of every first send lost, pairs and lone queries alike: the signature is not beyond chance', async () => {
    const frames: Array<{ us: number; data: Buffer }> = [];
    // 200 lookups as glibc makes them (A and AAAA at once from one port), one every 50 ms; of their 400 first sends,
    // 40 lost, never both of one pair.
    for (let i = 0; i < 200; i++) {
      const at = 1_000_000 + i * 50_000;
      frames.push(...exchange({ at, port: 20000 + i, id: 2 * i + 1, type: 'A', lostFirst: i % 10 === 0, name: `p${i}.example.com` }));
      frames.push(...exchange({ at: at + 50, port: 20000 + i, id: 2 * i + 2, type: 'AAAA', lostFirst: i % 10 === 5, name: `p${i}.example.com` }));
    }
    // 400 queries sent alone, of other names from other ports: 40 of their first sends lost, resent and answered.
    for (let i = 0; i < 400; i++) {
      frames.push(...exchange({ at: 1_020_000 + i * 25_000, port: 40000 + i, id: 1000 + i, type: 'A', lostFirst: i % 10 === 3, name: `l${i}.example.com` }));
    }
    const doc = await watchOf('uniform.pcap', frames);
    expect(doc.pairs).toBe(200);
    expect(doc.raceSignature).toBe(40);
    expect(doc.lone).toBe(400);
    expect(doc.loneFirstLost).toBe(40);
    const f = doc.findings.find((x) => x.code === 'RACE_SIGNATURE')!;
    // 40 of 200 pairs with one lost, where independent loss at 10% gives 36 (2 x 0.1 x 0.9 a pair).
    expect(f.severity).toBe('warning');
    expect(f.evidence['p'] as number).toBeGreaterThan(0.05);
  });

  it('A, then AAAA from the same port once the A is answered (single-request): no pair, whatever the timing', async () => {
    const frames: Array<{ us: number; data: Buffer }> = [];
    for (let i = 0; i < 50; i++) {
      const at = 1_000_000 + i * 50_000;
      frames.push(...exchange({ at, port: 30000 + i, id: 2 * i + 1, type: 'A', lostFirst: false, name: `s${i}.example.com` }));
      // 3 ms later: after the A's answer (2 ms), well within the window a pair's two sends would be seen in.
      frames.push(...exchange({ at: at + 3000, port: 30000 + i, id: 2 * i + 2, type: 'AAAA', lostFirst: i % 5 === 0, name: `s${i}.example.com` }));
    }
    const doc = await watchOf('sequential.pcap', frames);
    expect(doc.pairs).toBe(0);
    expect(doc.raceSignature).toBe(0);
    expect(doc.findings.map((x) => x.code)).not.toContain('RACE_SIGNATURE');
  });
});
