/**
 * dnsbench and serve end to end: the built binary against real servers on
 * loopback (the embedded responder, and dnsmasq when installed).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { parseFault } from '../../src/dns/responder.js';
import type { Responder } from '../../src/dns/responder.js';
import { startResponder, stopResponder } from '../helpers/responders.js';
import { BIN, run } from '../helpers/run.js';

const serve = (faults: string[] = []): Promise<Responder> => startResponder({ faults: faults.map(parseFault) });

describe('k8sdiag dnsbench', () => {
  it('healthy run: summary table, histogram, exit 0', async () => {
    const r = await serve();
    const res = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '20', '-n', '500', '-d', 'google.com']);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/dnsbench queries -> 127\.0\.0\.1:\d+/);
    expect(res.stdout).toMatch(/│\s+500 │\s+500 │\s+0 │/);
    expect(res.stdout).toContain('rcodes: NOERROR 500');
    expect(res.stdout).toContain('latency histogram');
    expect(res.stdout).toContain('No findings.');
    expect(r.stats.queries).toBe(500);
  });

  it('prints each slow response as it arrives and exits 1', async () => {
    const r = await serve(['delay:300@every=50']);
    const res = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '5', '-n', '100', '-s', '0.2']);
    expect(res.exitCode).toBe(1);
    const slow = res.stdout.split('\n').filter((l) => l.includes(' SLOW '));
    expect(slow).toHaveLength(2);
    expect(slow[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z SLOW google\.com A 127\.0\.0\.1:\d+ sport=\d+ NOERROR \d+\.\d ms$/);
    expect(res.stdout).toMatch(/WARNING SLOW: 2 answered queries were slower than 0\.2 s/);
  });

  it('--json: one document on stdout, slow lines as NDJSON on stderr', async () => {
    const r = await serve(['delay:300@every=50', 'drop@every=25', 'servfail@every=10']);
    const res = await run(['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '5', '-n', '100', '-s', '0.2', '--timeout', '1']);
    expect(res.exitCode).toBe(1);
    const doc = JSON.parse(res.stdout);
    for (const key of ['sent', 'answered', 'timeouts', 'slow', 'errors', 'rcodes', 'latencyMs', 'qps', 'durationMs', 'histogram', 'findings']) {
      expect(doc).toHaveProperty(key);
    }
    expect(Object.keys(doc.latencyMs)).toEqual(['min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max']);
    // The first rule that fires wins: the 50th and 100th are delayed (slow), the 25th and 75th
    // dropped (timeouts), every other 10th is SERVFAIL.
    expect(doc).toMatchObject({ sent: 100, answered: 98, timeouts: 2, slow: 2 });
    expect(doc.rcodes).toEqual({ NOERROR: 90, SERVFAIL: 8 });
    expect(doc.histogram).toMatchObject({ layout: 'log-linear-v1', unit: 'us', count: 98 });
    const events = res.stderr.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(events.length).toBe(doc.slow);
    for (const e of events) expect(e).toMatchObject({ event: 'slow', name: 'google.com', type: 'A' });
  });

  it('IPv6 loopback', async () => {
    const r = await startResponder({ host: '::1' });
    const res = await run(['dnsbench', '--json', '--server', '::1', '-p', String(r.udpPort), '-n', '50', '-t', 'AAAA']);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ sent: 50, answered: 50, server: '::1' });
  });

  it('a closed port: the summary, then one line on stderr, exit 2', async () => {
    const r = await serve();
    const port = r.udpPort;
    await stopResponder(r);
    const res = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(port), '-c', '1', '-n', '10', '--timeout', '1']);
    expect(res.exitCode).toBe(2);
    expect(res.stdout).toMatch(/errors: ECONNREFUSED 10/);
    expect(res.stderr.trim()).toBe(`k8sdiag: no answer from 127.0.0.1:${port}: 10 x ECONNREFUSED`);
  });

  it('--queries file with names and types', async () => {
    const r = await serve();
    const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-'));
    const file = join(dir, 'q.txt');
    writeFileSync(file, '# comment\na.test\nb.test AAAA\n\nc.test txt\n');
    const res = await run(['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '1', '-n', '3', '--queries', file]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(r.seen.map((q) => `${q.name}/${q.type}`)).toEqual(['a.test/A', 'b.test/AAAA', 'c.test/TXT']);
    writeFileSync(file, 'a.test BOGUS\n');
    const bad = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(r.udpPort), '--queries', file]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.trim()).toBe('k8sdiag: queries file line 1: unknown record type "BOGUS"');
  });

  it('usage errors exit 2 with one line', async () => {
    for (const args of [['-c', '0'], ['-n', 'many'], ['--qps', '-5'], ['-t', 'NOPE'], ['--single-request'], ['--port', '70000'], ['-d', 'a..b']]) {
      const res = await run(['dnsbench', '--server', '127.0.0.1', ...args]);
      expect(res.exitCode, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  it('Ctrl-C stops sending, waits for what is in flight, prints the summary', async () => {
    const r = await serve(['delay:100']);
    const child = spawn(process.execPath, [BIN, 'dnsbench', '--json', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '5', '-n', '100000'], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    setTimeout(() => child.kill('SIGINT'), 700);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    const doc = JSON.parse(out);
    expect(doc.interrupted).toBe(true);
    expect(doc.sent).toBeGreaterThan(10);
    expect(doc.sent).toBeLessThan(100000);
    expect(doc.sent).toBe(doc.answered + doc.timeouts);
    expect(err).toMatch(/stopping/);
  });

  it('EMFILE (a low ulimit -n) ends in one clear line, exit 2', async () => {
    const r = await serve();
    const res = await execa('bash', ['-c', `ulimit -n 40 && exec "${process.execPath}" "${BIN}" dnsbench --resolv - -c 200 -n 400 --server 127.0.0.1 -p ${r.udpPort}`], {
      reject: false,
      input: 'search a.test b.test c.test\noptions ndots:5\n',
      env: { NO_COLOR: '1' },
    });
    expect(res.exitCode, String(res.stdout)).toBe(2);
    expect(String(res.stderr)).toMatch(/^k8sdiag: out of file descriptors opening UDP sockets to 127\.0\.0\.1:\d+ \(EMFILE\)\nhint: lower -c, or raise the limit: ulimit -n 65536$/);
  });

  it('--resolv: lookups as glibc does them, with lookup latency', async () => {
    const r = await startResponder({ zones: ['google.com'] });
    const res = await run(['dnsbench', '--json', '--resolv', '-', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '2', '-n', '4'], {
      input: 'search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.255.0.1\noptions ndots:5\n',
    });
    expect(res.exitCode, res.stderr).toBe(0);
    const doc = JSON.parse(res.stdout);
    expect(doc.mode).toBe('lookups');
    expect(doc.lookups).toBe(4);
    expect(doc.resolver).toMatchObject({ libc: 'glibc', outcomes: { answer: 4 }, timeoutMs: 5000 });
    expect(doc.sent).toBe(32);
    expect(doc.lookupLatencyMs.max).toBeGreaterThan(0);
    expect(r.stats.queries).toBe(32);
  });
});

describe('k8sdiag serve', () => {
  it('serves on loopback, logs every query, reports its counts on exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-'));
    const log = join(dir, 'q.ndjson');
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--fault', 'servfail@every=2', '--log', log, '--json', '--duration', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    const port = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        err += d;
        const m = /listening on udp 127\.0\.0\.1:(\d+)/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', () => reject(new Error(err)));
    });
    const res = await run(['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(port), '-c', '1', '-n', '10']);
    expect(JSON.parse(res.stdout).rcodes).toEqual({ NOERROR: 5, SERVFAIL: 5 });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ command: 'serve', queries: 10, actions: { answer: 5, servfail: 5 } });
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatchObject({ proto: 'udp', name: 'google.com', type: 'A', action: 'answer' });
  });

  it('a port in use is exit 2 with a hint', async () => {
    const r = await serve();
    const res = await run(['serve', '--port', String(r.udpPort)]);
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toMatch(/^k8sdiag: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE\nhint: another server listens there/);
  });

  it('a bad fault is exit 2', async () => {
    const res = await run(['serve', '--fault', 'explode']);
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toMatch(/unknown fault "explode"/);
  });
});
