/**
 * dnsbench and serve end to end: the built binary against real servers on
 * loopback (the embedded responder, and dnsmasq when installed).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { parseFault } from '../../src/dns/responder.js';
import type { Responder } from '../../src/dns/responder.js';
import { startResponder } from '../helpers/responders.js';
import { closedUdpPort } from '../helpers/servers.js';
import { BIN, run } from '../helpers/run.js';

const serve = (faults: string[] = []): Promise<Responder> => startResponder({ faults: faults.map(parseFault) });
const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'k8sdiag-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('k8sdiag dnsbench', () => {
  it('a --queries file of 125,000 names runs (the longest query was found with a spread that overflowed the stack)', async () => {
    const r = await serve();
    const file = join(tempDir(), 'queries.txt');
    writeFileSync(file, Array.from({ length: 125_000 }, (_, i) => `host-${i}.example.com A`).join('\n'));
    const res = await run(['dnsbench', '--json', '--no-progress', '--server', '127.0.0.1', '-p', String(r.udpPort), '--queries', file, '-n', '20', '-c', '5'], { timeout: 60_000 });
    expect(res.stderr).not.toMatch(/Maximum call stack/);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ sent: 20, answered: 20 });
  }, 60_000);

  it('qps to the last answer leaves out the wait for timeouts at the end; qps over the run keeps it', async () => {
    // The first 20 queries are dropped: they time out 1.5 s after the start, well after the 0.5 s run; the other
    // 30 slots go on answering until then.
    const r = await serve(['drop@count=20']);
    const args = ['dnsbench', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '50', '--duration', '0.5', '--timeout', '1.5', '-d', 'a.test'];
    const json = await run([...args, '--json', '--no-progress']);
    expect(json.exitCode, json.stderr).toBe(1); // TIMEOUTS
    const doc = JSON.parse(json.stdout) as { answered: number; timeouts: number; qps: number; qpsToLastAnswer: number; durationMs: number };
    expect(doc.timeouts).toBe(20);
    expect(doc.durationMs).toBeGreaterThanOrEqual(1500);
    // Independent of the tool's own rate helper: answered over the whole run (durationMs is printed to 0.1 ms,
    // so the two agree to a relative 1e-4, not to an absolute 0.5 qps)...
    const overRun = (doc.answered * 1000) / doc.durationMs;
    expect(Math.abs(doc.qps - overRun) / overRun).toBeLessThan(1e-4);
    // ...and, answers stopping when sending stopped (about 0.5 s), a rate at least twice that.
    expect(doc.qpsToLastAnswer).toBeGreaterThan(2 * doc.qps);
    expect((doc.answered * 1000) / doc.qpsToLastAnswer).toBeLessThan(1000);

    const r2 = await serve(['drop@count=20']);
    const human = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(r2.udpPort), ...args.slice(5), '--no-progress']);
    expect(human.stdout).toMatch(/qps to the last answer: [\d,]+; the run then waited 1\.\d\d s for queries that got no answer/);
  });

  it('a healthy run prints no second rate: the two agree', async () => {
    const r = await serve();
    const res = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '20', '-n', '2000', '-d', 'a.test', '--no-progress']);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).not.toContain('qps to the last answer');
  });

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

  it('a closed port, one or 100 in flight: the summary, then one line on stderr, exit 2', async () => {
    const port = await closedUdpPort();
    for (const c of ['1', '100']) {
      const res = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(port), '-c', c, '-n', '1000', '--timeout', '0.5']);
      expect(res.exitCode, `-c ${c}`).toBe(2);
      expect(res.stdout).toMatch(/errors: ECONNREFUSED 1000/);
      expect(res.stdout).toMatch(/per query\s*│\s*n\/a/);
      expect(res.stdout).toContain('no replies, nothing to show');
      expect(res.stderr.trim()).toBe(`k8sdiag: no answer from 127.0.0.1:${port}: 1000 x ECONNREFUSED`);
    }
    // --json: latency figures are null, not 0.
    const j = await run(['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(port), '-n', '20', '--timeout', '0.5']);
    expect(j.exitCode).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ latencyMs: null, answered: 0, timeouts: 0, errors: { ECONNREFUSED: 20 } });
  });

  it('an empty resolv.conf means 127.0.0.1:53 (glibc); nothing listening there is exit 2, not a hang', async () => {
    const port = await closedUdpPort();
    const res = await run(['dnsbench', '--resolv', '-', '-p', String(port), '-n', '3', '-c', '3', '--timeout', '1'], { input: '' });
    expect(res.exitCode, res.stdout).toBe(2);
    expect(res.stderr.trim()).toMatch(/^k8sdiag: no answer from 127\.0\.0\.1:\d+: \d+ x ECONNREFUSED$/);
  });

  it('a server that cannot be connected to is one line naming it and the reason, exit 2 (both modes)', async () => {
    for (const extra of [[], ['--resolv', '-']]) {
      const res = await run(['dnsbench', '--server', '255.255.255.255', '-n', '1', ...extra], { input: 'nameserver 10.0.0.1\n' });
      expect(res.exitCode, res.stderr).toBe(2);
      // With a route the kernel refuses the broadcast address (EACCES); in a namespace with only loopback there is no
      // route to it at all (ENETUNREACH). Either way: one line naming it, and a hint.
      expect(res.stderr).toMatch(/^k8sdiag: (not allowed to send to 255\.255\.255\.255:53 \(EACCES\)|cannot reach 255\.255\.255\.255:53: no route to that network \(ENETUNREACH\))\nhint: /);
      expect(res.stderr).not.toMatch(/at .*\.js/);
    }
  });

  it('--server [::1], IPv6 shown as [::1]:port, record types by number', async () => {
    const r = await startResponder({ host: '::1' });
    const res = await run(['dnsbench', '--server', '[::1]', '-p', String(r.udpPort), '-n', '20', '-t', '65']);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toContain(`dnsbench queries -> [::1]:${r.udpPort}`);
    expect(r.seen[0]).toMatchObject({ type: 'HTTPS' });
    const t = await run(['dnsbench', '--json', '--server', `[::1]:${r.udpPort}`, '-n', '2', '-t', 'TYPE99']);
    expect(t.exitCode, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout).servers).toEqual([`[::1]:${r.udpPort}`]);
    expect(r.seen.at(-1)).toMatchObject({ type: 'SPF' });
  });

  it('flags that mean nothing in a mode are refused with one line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--libc', 'musl'], /--libc needs --resolv/],
      [['--resolv', '-', '--tcp'], /--tcp means nothing with --resolv/],
      [['--resolv', '-', '--sockets', '4'], /--sockets means nothing with --resolv/],
      [['--resolv', '-', '--libc', 'musl', '--single-request'], /--single-request is a glibc option/],
      [['--long-lived'], /--long-lived needs --resolv/],
    ];
    for (const [args, want] of cases) {
      const res = await run(['dnsbench', '--server', '127.0.0.1', ...args], { input: 'nameserver 127.0.0.1\n' });
      expect(res.exitCode, args.join(' ')).toBe(2);
      expect(res.stderr.split('\n')[0], args.join(' ')).toMatch(want);
    }
  });

  it('--timeout given on the command line wins over resolv.conf, even at its default value', async () => {
    const r = await serve(['drop']);
    const conf = 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n';
    const fromFile = await run(['dnsbench', '--json', '--resolv', '-', '-p', String(r.udpPort), '-n', '1', '-c', '1'], { input: conf });
    expect(JSON.parse(fromFile.stdout).timeoutMs).toBe(1000);
    const given = await run(['dnsbench', '--json', '--resolv', '-', '-p', String(r.udpPort), '-n', '1', '-c', '1', '--timeout', '5'], { input: conf.replace('timeout:1', 'timeout:3') });
    const doc = JSON.parse(given.stdout);
    expect(doc.timeoutMs).toBe(5000);
    expect(doc.lookupLatencyMs.max).toBeGreaterThanOrEqual(5000);
  }, 30_000);

  it('--timeout 0.5 in resolver mode waits 500 ms, as it reports', async () => {
    const r = await serve(['drop']);
    const res = await run(['dnsbench', '--json', '--resolv', '-', '-p', String(r.udpPort), '-n', '1', '-c', '1', '--timeout', '0.5'], { input: 'nameserver 127.0.0.1\noptions attempts:1\n' });
    const doc = JSON.parse(res.stdout);
    expect(doc.timeoutMs).toBe(500);
    expect(doc.lookupLatencyMs.max).toBeGreaterThanOrEqual(500);
    expect(doc.lookupLatencyMs.max).toBeLessThan(1000);
  });

  it('resolv.conf warnings are shown under --resolv', async () => {
    const r = await serve();
    const res = await run(['dnsbench', '--resolv', '-', '-p', String(r.udpPort), '-n', '1'], { input: 'nameserver 127.0.0.1\noptions ndots:abc\nbogus line\n' });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/warning/i);
    const j = await run(['dnsbench', '--json', '--resolv', '-', '-p', String(r.udpPort), '-n', '1'], { input: 'nameserver 127.0.0.1\noptions ndots:abc\n' });
    expect(JSON.parse(j.stdout).warnings.length).toBeGreaterThan(0);
    expect(j.stderr).toMatch(/^warning: stdin: /m);
  });

  it('-s applies to lookups in resolver mode: a slow lookup prints a SLOW LOOKUP line', async () => {
    const r = await startResponder({ faults: [parseFault('delay:150@type=AAAA')] });
    const res = await run(['dnsbench', '--resolv', '-', '-p', String(r.udpPort), '-n', '2', '-c', '1', '-s', '0.1'], { input: 'nameserver 127.0.0.1\n' });
    const lines = res.stdout.split('\n').filter((l) => / SLOW LOOKUP /.test(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/SLOW LOOKUP google\.com via 127\.0\.0\.1:\d+ answer \d+\.\d ms$/);
  });

  it('with stderr not a terminal, a progress line comes at the interval', async () => {
    const r = await serve(['delay:50']);
    const res = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(r.udpPort), '-n', '40', '-c', '2'], { env: { K8SDIAG_PROGRESS_MS: '200' } });
    expect(res.exitCode, res.stderr).toBe(0);
    const lines = res.stderr.split('\n').filter((l) => l.startsWith('k8sdiag dnsbench: '));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/^k8sdiag dnsbench: \d+\.\d s  sent \d+  answered \d+  timeouts 0  errors 0$/);
    expect(res.stderr).not.toContain('\r');
    const quiet = await run(['dnsbench', '--no-progress', '--server', '127.0.0.1', '-p', String(r.udpPort), '-n', '10', '-c', '2'], { env: { K8SDIAG_PROGRESS_MS: '100' } });
    expect(quiet.stderr).toBe('');
  });

  it('on a terminal, SLOW lines never run into the progress line', async () => {
    // script(1) gives the process a pseudo-terminal, as a user's shell would.
    const hasScript = (await execa('script', ['--version'], { reject: false })).exitCode === 0;
    if (!hasScript && process.env.CI) throw new Error('script (util-linux) is needed for the terminal test');
    if (!hasScript) return;
    // Delayed answers far over the threshold, and the threshold far over what a loaded machine adds to the others.
    const r = await serve(['delay:400@every=5']);
    const cmd = `"${process.execPath}" "${BIN}" dnsbench --server 127.0.0.1 -p ${r.udpPort} -n 40 -c 2 -s 0.3`;
    const res = await execa('script', ['-qfec', cmd, '/dev/null'], { reject: false, env: { K8SDIAG_PROGRESS_MS: '30', NO_COLOR: '1' }, stdin: 'ignore' });
    const out = String(res.stdout);
    const starts = [...out.matchAll(/\d{4}-\d\d-\d\dT[^ ]+ SLOW /g)].map((m) => m.index ?? 0);
    expect(starts.length).toBe(8);
    expect(out).toContain('sent '); // the progress line was drawn
    for (const i of starts) {
      const before = out.slice(Math.max(0, i - 4), i);
      expect(before.endsWith('\n') || before.endsWith('\u001b[2K'), JSON.stringify(out.slice(Math.max(0, i - 40), i + 10))).toBe(true);
    }
  });

  it('every answer NXDOMAIN for the asked name is a finding', async () => {
    const r = await startResponder({ zones: ['example.org'] });
    const res = await run(['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(r.udpPort), '-n', '10', '-d', 'google.com']);
    expect(res.exitCode).toBe(1);
    const doc = JSON.parse(res.stdout);
    expect(doc.findings.map((f: { code: string }) => f.code)).toContain('NO_ANSWERS');
  });

  it('--queries file with names and types', async () => {
    const r = await serve();
    const dir = tempDir();
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

  it.each([['SIGINT', 130], ['SIGTERM', 143]] as const)('%s stops sending, waits for what is in flight, prints the summary; a healthy run so stopped exits %i, never 0', async (sig, exit) => {
    const r = await serve(['delay:100']);
    const child = spawn(process.execPath, [BIN, 'dnsbench', '--json', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '5', '-n', '100000'], {
      env: { ...process.env, NO_COLOR: '1', K8SDIAG_PROGRESS_MS: '100' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    // Interrupt once the run has visibly started (its first progress line), not at a fixed time.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        const sent = [...err.matchAll(/ sent (\d+) /g)].map((m) => Number(m[1]));
        if (sent.some((n) => n >= 15)) {
          child.stderr.off('data', check);
          resolve();
        }
      };
      child.stderr.on('data', check);
    });
    child.kill(sig);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(exit);
    const doc = JSON.parse(out);
    expect(doc.interrupted).toBe(true);
    expect(doc.sent).toBeGreaterThan(10);
    expect(doc.sent).toBeLessThan(100000);
    expect(doc.sent).toBe(doc.answered + doc.timeouts);
    expect(err).toMatch(new RegExp(`${sig}: stopping`));
    expect(doc.findings.filter((f: { severity: string }) => f.severity !== 'info')).toEqual([]);
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
    const dir = tempDir();
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
    expect(JSON.parse(out)).toMatchObject({ command: 'serve', listen: '127.0.0.1', queries: 10, actions: { answer: 5, servfail: 5 } });
    // The header's host is the machine's name, as in every document, not the address it listened on.
    expect(JSON.parse(out).host).toBe(process.env.NODE_NAME?.trim() || (await import('node:os')).hostname());
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

  it('--log to a path it cannot write: one line, exit 2, before listening; --log - with --json is refused', async () => {
    const res = await run(['serve', '--port', '0', '--log', '/nonexistent-dir/q.ndjson', '--duration', '1']);
    expect(res.exitCode).toBe(2);
    expect(res.stderr.trim()).toBe('k8sdiag: --log /nonexistent-dir/q.ndjson: cannot write there (ENOENT)');
    const both = await run(['serve', '--port', '0', '--log', '-', '--json', '--duration', '1']);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toMatch(/^k8sdiag: --log - and --json both write to stdout\n/);
  });

  it('a burst of 1000 queries from one socket: the responder keeps them all (sized buffers, drops counted)', async () => {
    const r = await startResponder({ record: false });
    const res = await run(['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(r.udpPort), '-c', '1000', '-n', '1000', '--sockets', '1', '--timeout', '2']);
    const doc = JSON.parse(res.stdout);
    expect(r.stats.drops).toBe(0);
    expect(r.stats.queries).toBe(1000);
    expect(doc).toMatchObject({ answered: 1000, timeouts: 0 });
    expect(doc.localDrops.ownSockets).toBe(0);
  });

  it('a bad fault is exit 2', async () => {
    const res = await run(['serve', '--fault', 'explode']);
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toMatch(/unknown fault "explode"/);
  });
});

describe('--server shaped like an address but not one', () => {
  it('is a usage error (exit 2, one line and a hint), never a host name looked up', async () => {
    for (const bad of ['127.0.0.300', '10.96.0', 'fd00::zz', '[fd00::zz]:53']) {
      const res = await run(['dnsbench', '--server', bad, '-n', '1']);
      expect(res.exitCode, bad).toBe(2);
      expect(res.stderr, bad).toMatch(new RegExp(`^k8sdiag: --server ${bad.replace(/[.[\]]/g, '\\$&')}: not a valid IP address\\nhint: `));
    }
    const ep = await run(['doctor', '--endpoints', '127.0.0.2:99999', '--resolv', '-'], { input: 'nameserver 127.0.0.1\n' });
    expect(ep.exitCode).toBe(2);
    expect(ep.stderr).toMatch(/^k8sdiag: --endpoints 127\.0\.0\.2:99999: port must be from 1 to 65535/);
  });
});
