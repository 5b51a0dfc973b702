/**
 * watch on captures tcpdump writes of real traffic on loopback: a responder that drops some queries, a client that
 * sends them. Counts are checked against the responder's own record of every query it saw and what it did with it,
 * and the frames against tshark's reading of the same file (an independent decoder). The same traffic is read in
 * every link type and file format tcpdump and editcap write; damaged captures are refused or cut short, never a crash.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEngine } from '../../src/engine/engine.js';
import { parseFault } from '../../src/dns/faults.js';
import { mulberry32 } from '../../src/stats/index.js';
import type { Responder } from '../../src/dns/responder.js';
import { Responder as ResponderClass } from '../../src/dns/responder.js';
import { ask } from '../helpers/udp.js';
import { fixture, run } from '../helpers/run.js';
import { TOOLS, gate, titled } from '../helpers/tools.js';

const capture = await gate({ root: true }, TOOLS.tcpdump, TOOLS.tshark, TOOLS.editcap, TOOLS.dig);
const tools = capture.ok;
if (!tools && process.env.CI) throw new Error('the watch tests need root, tcpdump, tshark, editcap and dig (tcpdump, tshark, dnsutils)');

// Made by a hook its cleanup is paired with: a file whose every test skips makes none and leaves none behind.
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-watch-'));
});
afterAll(() => (process.env.KEEP || dir === '' ? undefined : rmSync(dir, { recursive: true, force: true })));

/** tcpdump writing `file`, started and listening before this resolves. */
async function tcpdump(file: string, args: string[]): Promise<{ stop: () => Promise<string> }> {
  const child: ChildProcess = spawn('tcpdump', [...args, '--immediate-mode', '-U', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`tcpdump exited: ${err}`)));
  });
  return {
    stop: async () => {
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await done;
      return err;
    },
  };
}

interface WatchDoc {
  queries: number;
  answered: number;
  unanswered: number;
  resends: number;
  late: number;
  inFlightAtEnd: number;
  messages: number;
  malformed: number;
  truncated: number;
  tcpAfterTruncated: number;
  capture: { format: string; packets: number; damaged: string | null; skipped: Record<string, number> };
  byServer: Record<string, { queries: number; unanswered: number; aaaa: number }>;
  findings: Array<{ code: string; severity: string }>;
}

async function watch(file: string, port: number, extra: string[] = []): Promise<{ doc: WatchDoc; code: number; stderr: string }> {
  const r = await run(['watch', '--pcap', file, '--dns-port', String(port), '--timeout', '0.5', '--json', ...extra]);
  return { doc: JSON.parse(r.stdout) as WatchDoc, code: r.exitCode, stderr: r.stderr };
}

/** tshark's count of DNS queries and responses in `file`, with `port` read as DNS. */
async function tsharkCounts(file: string, port: number): Promise<{ queries: number; responses: number }> {
  const r = await execa('tshark', ['-n', '-r', file, '-d', `udp.port==${port},dns`, '-d', `tcp.port==${port},dns`, '-Y', 'dns', '-T', 'fields', '-e', 'dns.flags.response'], { reject: false });
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  // A TCP segment may carry several messages: one line, values joined by commas.
  const values = lines.flatMap((l) => l.split(','));
  return { queries: values.filter((v) => v === '0' || v === 'False').length, responses: values.filter((v) => v === '1' || v === 'True').length };
}

describe.skipIf(!tools)(titled('watch on real captures', capture), () => {
  let responder: Responder;
  let port = 0;
  const files: Record<string, string> = {};

  beforeAll(async () => {
    responder = new ResponderClass({ host: '127.0.0.1', port: 0, record: true, faults: [parseFault('drop@every=7,name=drop.test')] });
    await responder.start();
    port = responder.udpPort;
    const caps = {
      ethernet: await tcpdump(join(dir, 'lo.pcap'), ['-i', 'lo', '-s', '512', `port ${port}`]),
      sll: await tcpdump(join(dir, 'any.pcap'), ['-i', 'any', '-s', '512', `port ${port}`]),
      sll2: await tcpdump(join(dir, 'any2.pcap'), ['-i', 'any', '-y', 'LINUX_SLL2', '-s', '512', `port ${port}`]),
      nano: await tcpdump(join(dir, 'nano.pcap'), ['-i', 'lo', '--nano', '-s', '512', `port ${port}`]),
    };
    // 300 queries of a name the responder drops every 7th of, A and AAAA, from 300 ports, each waiting 300 ms.
    await runEngine({ server: '127.0.0.1', port, queries: [{ name: 'drop.test', type: 'A' }, { name: 'drop.test', type: 'AAAA' }], concurrency: 20, total: 300, timeoutMs: 300, slowMs: 60_000 });
    // After the timeout, one query that is always answered: the capture's clock passes every earlier query's timeout.
    await new Promise((r) => setTimeout(r, 700));
    expect(await ask(port, 'ok.test', 'A', { timeoutMs: 2000 })).toBeDefined();
    await new Promise((r) => setTimeout(r, 200));
    for (const [k, c] of Object.entries(caps)) {
      await c.stop();
      files[k] = join(dir, `${k}.pcap`);
    }
    files['ethernet'] = join(dir, 'lo.pcap');
    files['sll'] = join(dir, 'any.pcap');
    files['sll2'] = join(dir, 'any2.pcap');
    files['nano'] = join(dir, 'nano.pcap');
    await execa('editcap', ['-F', 'pcapng', files['sll2'], join(dir, 'any2.pcapng')]);
    files['pcapng'] = join(dir, 'any2.pcapng');
  }, 60_000);
  afterAll(async () => {
    await responder?.stop();
  });

  it("counts every query as the responder saw it: answered, and the dropped ones unanswered; tshark reads the same messages", async () => {
    const seen = responder.seen.filter((q) => q.name === 'drop.test' || q.name === 'ok.test');
    const dropped = seen.filter((q) => q.action === 'drop').length;
    expect(dropped).toBeGreaterThan(30);
    const { doc, code } = await watch(files['ethernet']!, port);
    expect(doc.capture.format).toBe('pcap');
    expect(doc.queries).toBe(seen.length);
    expect(doc.unanswered).toBe(dropped);
    expect(doc.answered).toBe(seen.length - dropped);
    expect(doc.inFlightAtEnd).toBe(0);
    expect(doc.byServer[`127.0.0.1:${port}`]!.aaaa).toBe(seen.filter((q) => q.type === 'AAAA').length);
    const t = await tsharkCounts(files['ethernet']!, port);
    expect(doc.messages).toBe(t.queries + t.responses);
    expect(t.queries).toBe(seen.length);
    expect(code).toBe(1);
    expect(doc.findings.map((f) => f.code)).toContain('QUERY_STALLS');
  });

  it('reads the same traffic in every link type and format: Linux cooked v1 and v2, nanosecond pcap, pcapng', async () => {
    const { doc: ref } = await watch(files['ethernet']!, port);
    for (const k of ['sll', 'sll2', 'nano', 'pcapng']) {
      const { doc } = await watch(files[k]!, port);
      expect({ k, format: doc.capture.format, q: doc.queries, a: doc.answered, u: doc.unanswered, m: doc.messages }).toEqual({ k, format: k === 'pcapng' ? 'pcapng' : 'pcap', q: ref.queries, a: ref.answered, u: ref.unanswered, m: ref.messages });
      const t = await tsharkCounts(files[k]!, port);
      expect(doc.messages).toBe(t.queries + t.responses);
    }
  });

  it('a capture cut anywhere, or with random bytes written over it: a damaged capture counted up to the damage, never a crash', async () => {
    const whole = readFileSync(files['pcapng']!);
    const full = (await watch(files['pcapng']!, port)).doc;
    const rand = mulberry32(4);
    for (let k = 0; k < 12; k++) {
      const cut = 24 + Math.floor(rand() * (whole.length - 24));
      const f = join(dir, `cut-${k}.pcapng`);
      const bytes = Buffer.from(whole.subarray(0, cut));
      if (k % 2 === 1) for (let j = 0; j < 20; j++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      writeFileSync(f, bytes);
      const r = await run(['watch', '--pcap', f, '--dns-port', String(port), '--timeout', '0.5', '--json']);
      expect([0, 1, 2], r.stderr).toContain(r.exitCode);
      expect(r.stderr).not.toMatch(/internal error|    at /);
      if (r.exitCode !== 2) {
        const doc = JSON.parse(r.stdout) as WatchDoc;
        expect(doc.messages).toBeLessThanOrEqual(full.messages + 20);
        if (k % 2 === 0) expect(doc.capture.damaged ?? '').toMatch(/cut short|block|record/);
      } else expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    }
    // A record that claims 4 GiB: refused at once, nothing allocated for it.
    const pcap = readFileSync(files['ethernet']!);
    const huge = Buffer.from(pcap);
    huge.writeUInt32LE(0xffff_fff0, 24 + 8);
    writeFileSync(join(dir, 'huge.pcap'), huge);
    const h = await run(['watch', '--pcap', join(dir, 'huge.pcap'), '--json']);
    expect(h.exitCode).toBe(2);
    expect(h.stderr).toMatch(/a record of 4294967280 bytes/);
    // Not a capture at all.
    writeFileSync(join(dir, 'junk.bin'), Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    const j = await run(['watch', '--pcap', join(dir, 'junk.bin')]);
    expect(j.exitCode).toBe(2);
    expect(j.stderr).toMatch(/^k8sdiag: .*not a pcap or pcapng capture/);
  });
});

describe.skipIf(!tools)(titled('watch: the search list in real traffic', capture), () => {
  it('real glibc with three search domains and ndots:5: the search names are the NXDOMAIN answers tshark finds under the search domains', async () => {
    const file = fixture('capture/glibc-sll2.pcap');
    const r = await run(['watch', '--pcap', file, '--json']);
    const doc = JSON.parse(r.stdout) as Omit<WatchDoc, 'findings'> & { searchQueries: number; queries: number; findings: Array<{ code: string; evidence: Record<string, number> }> };
    const t = await execa('tshark', ['-n', '-r', file, '-Y', 'dns.flags.response == 1', '-T', 'fields', '-e', 'dns.qry.name', '-e', 'dns.flags.rcode']);
    const answers = t.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t') as [string, string]);
    const suffixes = ['.default.svc.cluster.local', '.svc.cluster.local', '.cluster.local'];
    const search = answers.filter(([name, rcode]) => rcode === '3' && suffixes.some((x) => name.endsWith(x)));
    expect(search.length).toBeGreaterThan(20);
    expect(doc.searchQueries).toBe(search.length);
    const waste = doc.findings.find((f) => f.code === 'SEARCH_LIST_WASTE');
    expect(waste?.evidence['queriesPerName']).toBe(Number((doc.queries / (doc.queries - search.length)).toFixed(2)));
  });
});

describe.skipIf(!tools)(titled('watch over IPv6 and TCP', capture), () => {
  it('queries to ::1, over UDP and over TCP (dig +tcp, a message split across segments or not): each counted once, answered', async () => {
    const r = new ResponderClass({ host: '::1', port: 0, record: true, tcp: true });
    await r.start();
    const file = join(dir, 'v6.pcap');
    const cap = await tcpdump(file, ['-i', 'lo', '-s', '0', `port ${r.udpPort}`]);
    try {
      for (let k = 0; k < 5; k++) await ask(r.udpPort, `u${k}.test`, 'AAAA', { host: '::1' });
      for (let k = 0; k < 3; k++) await execa('dig', ['@::1', '-p', String(r.udpPort), '+tcp', '+tries=1', '+time=2', `t${k}.test`, 'A']);
      await new Promise((res) => setTimeout(res, 200));
    } finally {
      await cap.stop();
      await r.stop();
    }
    const { doc } = await watch(file, r.udpPort);
    expect(r.seen.filter((q) => q.proto === 'tcp').length).toBe(3);
    expect(doc.queries).toBe(r.seen.length);
    expect(doc.answered).toBe(r.seen.length);
    expect(doc.unanswered).toBe(0);
    // An IPv6 server is written [address]:port, so its address and port read apart unambiguously.
    expect(Object.keys(doc.byServer)).toEqual([`[::1]:${r.udpPort}`]);
    expect(doc.byServer[`[::1]:${r.udpPort}`]!.queries).toBe(r.seen.length);
    const t = await tsharkCounts(file, r.udpPort);
    expect(doc.messages).toBe(t.queries + t.responses);
  });
});
