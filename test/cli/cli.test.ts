/**
 * End to end: the built binary as a user runs it. Exit codes, stdout/stderr
 * separation, one-line errors, no stack traces.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { fixture, readFixture, run } from '../helpers/run.js';

const oneLine = (s: string) => s.trim().split('\n').length === 1;

describe('k8sdiag top level', () => {
  it('--version prints the package version', async () => {
    const r = await run(['--version']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('--help lists the commands and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/resolv/);
    expect(r.stdout).toMatch(/conntrack/);
    expect(r.stdout).toMatch(/Exit codes/);
  });

  it('per-command help has examples', async () => {
    for (const cmd of ['resolv', 'conntrack']) {
      const r = await run([cmd, '--help']);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/Examples:/);
    }
  });

  it('an unknown flag is one line on stderr and exit 2', async () => {
    const r = await run(['conntrack', '--bogus']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(oneLine(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(/^k8sdiag: unknown option '--bogus'/);
  });

  it('two formats asked at once, or a format the command has not, are refused before the command starts', async () => {
    const both = await run(['resolv', '--json', '-o', 'human', '--file', '-', 'google.com'], { input: 'nameserver 10.0.0.1\n' });
    expect(both.exitCode).toBe(2);
    expect(both.stderr.trim()).toBe('k8sdiag: --json and -o human ask for two formats: give one');
    expect(both.stdout).toBe('');
    // serve would listen for its whole --duration and only then refuse: now it never listens.
    const t = performance.now();
    const serve = await run(['serve', '-o', 'prom', '--port', '0', '--duration', '30']);
    expect(serve.exitCode).toBe(2);
    expect(serve.stderr.trim()).toBe("k8sdiag: option '-o, --output <format>' argument 'prom' is invalid. Allowed choices are human, json, line.");
    // Each command's help lists only the formats it has.
    const { run: r2 } = await import('../helpers/run.js');
    expect((await r2(['help', 'serve'])).stdout).not.toMatch(/"prom"/);
    expect((await r2(['help', 'doctor'])).stdout).toMatch(/"prom"/);
    expect(performance.now() - t).toBeLessThan(10_000);
    const same = await run(['resolv', '--json', '-o', 'json', '--file', '-', 'google.com'], { input: 'nameserver 10.0.0.1\n' });
    expect(JSON.parse(same.stdout).schema).toBe('k8sdiag.resolv/1');
  });

  it('an output that cannot be written (a full disk: /dev/full) is one line and exit 2, not a stack trace', async () => {
    const { execa } = await import('execa');
    const { BIN } = await import('../helpers/run.js');
    const r = await execa('sh', ['-c', `"${process.execPath}" "${BIN}" resolv --file - google.com > /dev/full`], { reject: false, input: 'nameserver 10.0.0.1\n' });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr).trim()).toBe('k8sdiag: cannot write the output: ENOSPC');
  });

  it('--server with nothing in it: a usage error naming the flag', async () => {
    const r = await run(['dnsbench', '--server', '', '-n', '1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe('k8sdiag: --server needs an address: an IP, [v6]:port, v4:port or a host name');
  });

  it('escape sequences and carriage returns from the input are shown escaped, never sent to the terminal', async () => {
    // A window-title sequence (OSC 0 ... BEL) in a document merge cannot read.
    const m = await run(['merge'], { input: '\x1b]0;PWNED\x07\n' });
    expect(m.stderr).not.toMatch(/[\x07\x1b]/);
    expect(m.stderr).toContain('\\x1b]0;PWNED\\x07');
    // A resolv.conf written on Windows: CRLF line ends.
    const r = await run(['resolv', '--no-color', '--file', '-', 'google.com'], { input: 'nameserver 10.0.0.1\r\nsearch a.b\r\n' });
    expect(r.stdout + r.stderr).not.toContain('\r');
    expect(r.stdout).toContain('a.b\\x0d');
  });

  it('words that say what is so: one name, no "0 of them", the remedy with the name asked about, an empty --service', async () => {
    const one = await run(['resolv', '--no-color', '--file', '-', 'google.com'], { input: 'nameserver 10.96.0.10\n' });
    expect(one.stdout).toMatch(/^google\.com -> 1 name, 2 queries \(/m);
    expect(one.stdout).not.toMatch(/0 of them/);
    const amp = await run(['resolv', '--json', '--file', '-', 'api.example.com'], { input: 'nameserver 10.96.0.10\nsearch a.svc.cluster.local\noptions ndots:5\n' });
    expect(JSON.parse(amp.stdout).findings.find((f: { code: string }) => f.code === 'NDOTS_AMPLIFICATION').remedy).toMatch(/^end external names with a dot \("api\.example\.com\."\)/);
    const svc = await run(['svc', '--service', ''], { input: readFixture('svc/iptables-save-overall.txt') });
    expect(svc.exitCode).toBe(2);
    expect(svc.stderr.split('\n')[0]).toBe('k8sdiag: --service needs a Service: NAMESPACE/NAME or NAMESPACE/NAME:PORT');
  });

  it('counts and limits said right: a two-line file has two lines, a delay over the limit says the limit, attempts:0 named', async () => {
    const two = await run(['resolv', '--file', '-', 'x'], { input: 'garbage\nfoo\n' });
    expect(two.stderr.trim()).toBe('k8sdiag: not a resolv.conf: none of its 2 lines is a nameserver, search, domain, options or sortlist line');
    const delay = await run(['serve', '--fault', 'delay:99999999999']);
    expect(delay.exitCode).toBe(2);
    expect(delay.stderr.trim()).toBe('k8sdiag: --fault delay:99999999999: a delay is at most 600000 ms (10 minutes)');
    const att = await run(['dnsbench', '--json', '--resolv', '-', '-n', '1'], { input: 'nameserver 127.0.0.1\noptions attempts:0\n' });
    const f = JSON.parse(att.stdout).findings.find((x: { code: string }) => x.code === 'NO_ANSWERS');
    expect(f.remedy).toBe("remove options attempts:0 from the resolv.conf (the pod's dnsConfig.options)");
  });

  it('an unknown command exits 2', async () => {
    const r = await run(['frobnicate']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/unknown command/);
  });

  it('help for a command there is not exits 2 as the command itself does, one line; serve --zone checks its name', async () => {
    const res = await run(['help', 'bogus']);
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toBe("k8sdiag: unknown command 'bogus'");
    expect(res.stdout).toBe('');
    expect((await run(['help', 'doctor'])).exitCode).toBe(0);
    const zone = await run(['serve', '--zone', 'a..b', '--duration', '1']);
    expect(zone.exitCode).toBe(2);
    expect(zone.stderr.trim()).toBe('k8sdiag: --zone: "a..b" has an empty label (two dots in a row, or a leading dot)');
  });

  it('a bad choice exits 2', async () => {
    const r = await run(['resolv', '--libc', 'uclibc', 'x']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/uclibc/);
    expect(r.stderr).not.toMatch(/at .*\.js/);
  });
});

describe('k8sdiag resolv', () => {
  it('prints the numbered table and the cost line, exits 1 on amplification', async () => {
    const r = await run(['resolv', '--file', fixture('resolv/kubelet-eks.conf'), 'google.com']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('google.com.kube-system.svc.cluster.local.');
    expect(r.stdout).toContain('google.com -> 5 names, 10 queries, 8 of them expected NXDOMAIN before an answer');
    expect(r.stdout).toMatch(/trailing dot/);
    expect(r.stdout).not.toMatch(/\u001b\[/); // NO_COLOR
  });

  it('--json: one document with candidates, queries, nameservers, search, options, warnings', async () => {
    const r = await run(['resolv', '--json', '--file', fixture('resolv/kubelet-clusterfirst.conf'), 'google.com']);
    expect(r.exitCode).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.candidates.map((c: { fqdn: string }) => c.fqdn)).toEqual([
      'google.com.default.svc.cluster.local.',
      'google.com.svc.cluster.local.',
      'google.com.cluster.local.',
      'google.com.',
    ]);
    expect(doc.queries).toHaveLength(8);
    expect(doc.nameservers).toEqual(['10.96.0.10']);
    expect(doc.search).toHaveLength(3);
    expect(doc.options.ndots).toBe(5);
    expect(doc.warnings).toEqual([]);
    expect(doc.findings[0].code).toBe('NDOTS_AMPLIFICATION');
  });

  it('a trailing dot is healthy: exit 0', async () => {
    const r = await run(['resolv', '--json', '--file', fixture('resolv/kubelet-clusterfirst.conf'), 'google.com.']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout).candidates).toHaveLength(1);
  });

  it('reads resolv.conf from stdin with --file -', async () => {
    const r = await run(['resolv', '--json', '--file', '-', '--libc', 'musl', 'x'], { input: 'search a.com\nnameserver 10.0.0.1\n' });
    expect(JSON.parse(r.stdout).candidates.map((c: { fqdn: string }) => c.fqdn)).toEqual(['x.a.com.', 'x.']);
  });

  it('honours RES_OPTIONS like glibc', async () => {
    const r = await run(['resolv', '--json', '--file', fixture('resolv/kubelet-clusterfirst.conf'), 'google.com'], { env: { RES_OPTIONS: 'ndots:1' } });
    expect(JSON.parse(r.stdout).candidates[0].fqdn).toBe('google.com.');
  });

  it('a missing file is exit 2 with one line', async () => {
    const r = await run(['resolv', '--file', '/nonexistent/resolv.conf', 'x']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe('k8sdiag: /nonexistent/resolv.conf: no such file');
  });

  it('an invalid name is exit 2 with one line', async () => {
    const r = await run(['resolv', '--file', fixture('resolv/kubelet-clusterfirst.conf'), 'a..b']);
    expect(r.exitCode).toBe(2);
    expect(oneLine(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(/empty label/);
  });

  it('warnings go to stderr in --json mode, stdout stays one document', async () => {
    const r = await run(['resolv', '--json', '--file', '-', 'x'], { input: 'nameserver 10.0.0.1\noptions bogus\n' });
    expect(r.stderr).toMatch(/warning: line 2: unknown option "bogus"/);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
  });
});

describe('k8sdiag conntrack', () => {
  it('conntrack -S | k8sdiag conntrack: the race found, exit 1', async () => {
    const r = await run(['conntrack'], { input: readFixture('conntrack/conntrack-S-old-searched-weave3287.txt') });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/insert_failed\s*│\s*199/);
    expect(r.stdout).toMatch(/WARNING INSERT_FAILED/);
    expect(r.stderr).toBe('');
  });

  it('healthy counters exit 0', async () => {
    const r = await run(['conntrack', '--json'], { input: readFixture('conntrack/conntrack-S-6.18-idle.txt') });
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.findings).toEqual([]);
    expect(doc.cpus).toBe(2);
  });

  it('info findings alone leave the exit code at 0', async () => {
    const r = await run(['conntrack', '--json'], { input: 'cpu=0 found=0 insert_failed=0 drop=0 clash_resolve=4 chaintoolong=0\n' });
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout).findings[0].code).toBe('CLASH_RESOLVE');
  });

  it('--file with a mix of inputs: JSON with findings, counters and table', async () => {
    const r = await run(['conntrack', '--json', '--file', fixture('conntrack/sysctl-6.18-pressure.txt')]);
    expect(r.exitCode).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.table).toMatchObject({ count: 2351, max: 2500 });
    expect(doc.findings[0]).toMatchObject({ code: 'TABLE_PRESSURE', severity: 'warning' });
    expect(Object.keys(doc.findings[0])).toEqual(['code', 'severity', 'subject', 'message', 'evidence', 'remedy']);
  });

  for (const [what, input, re] of [
    ['garbage', 'lorem ipsum dolor\n', /nothing recognisable/],
    ['empty stdin', '', /empty input/],
    ['binary junk', '\u0000\u0001\u00ff\u0002', /binary/],
    ['a negative counter', 'cpu=0 insert_failed=-1\n', /negative/],
  ] as const) {
    it(`${what} on stdin: exit 2, one line saying what was expected`, async () => {
      const r = await run(['conntrack'], { input });
      expect(r.exitCode).toBe(2);
      expect(r.stdout).toBe('');
      expect(oneLine(r.stderr)).toBe(true);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it('--watch with --file is a usage error', async () => {
    const r = await run(['conntrack', '--watch', '2', '--file', fixture('conntrack/conntrack-S-6.18-idle.txt')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--watch/);
  });

  it('--watch needs a positive number', async () => {
    const r = await run(['conntrack', '--watch', 'soon']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--watch must be a number > 0/);
  });
});

describe('k8sdiag svc', () => {
  it('iptables-save | k8sdiag svc: shares as bars, findings, exit 1', async () => {
    const r = await run(['svc'], { input: readFixture('svc/iptables-save-cluster-shapes.txt') });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/kube-system\/kube-dns:dns udp/);
    expect(r.stdout).toMatch(/10\.244\.1\.2:53 +#{10}\.{20} +33\.33%/);
    expect(r.stdout).toMatch(/WARNING NO_LOCAL_ENDPOINTS: default\/web:http/);
  });

  it('--json: services[].endpoints[].share, one document', async () => {
    const r = await run(['svc', '--json', '--file', fixture('svc/nft-kube-proxy-overall.txt')]);
    const doc = JSON.parse(r.stdout);
    expect(doc.modes).toEqual(['nftables']);
    expect(doc.services.find((s: { id: string }) => s.id === 'ns4/svc4:p80').endpoints.map((e: { share: number }) => e.share)).toEqual([0.5, 0.5]);
  });

  it('a healthy rule set exits 0', async () => {
    const r = await run(['svc', '--json', '--service', 'kube-system/kube-dns', '--file', fixture('svc/iptables-save-cluster-shapes.txt')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).services.map((s: { id: string }) => s.id)).toEqual(['kube-system/kube-dns:dns', 'kube-system/kube-dns:dns-tcp']);
  });

  it('an unknown --service, garbage and empty input are exit 2 with one line', async () => {
    const a = await run(['svc', '--service', 'nope/nope', '--file', fixture('svc/iptables-save-overall.txt')]);
    expect(a.exitCode).toBe(2);
    expect(a.stderr.split('\n')[0]).toBe('k8sdiag: no Service nope/nope in the rules');
    for (const input of ['not rules at all\n', '']) {
      const r = await run(['svc'], { input });
      expect(r.exitCode).toBe(2);
      expect(oneLine(r.stderr)).toBe(true);
    }
  });
});

describe('the one-file bundle', () => {
  it('runs alone from another directory, with no node_modules and no package.json', async () => {
    const { mkdtempSync, copyFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { fileURLToPath } = await import('node:url');
    const { execa } = await import('execa');
    const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-bundle-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const bundle = join(dir, 'k8sdiag.mjs');
    copyFileSync(fileURLToPath(new URL('../../dist/k8sdiag.mjs', import.meta.url)), bundle);
    const v = await execa(process.execPath, [bundle, '--version'], { cwd: dir, reject: false });
    expect(String(v.stdout).trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const r = await execa(process.execPath, [bundle, 'resolv', '--json', '--file', '-', 'google.com'], { cwd: dir, reject: false, input: 'search a.svc.cluster.local\noptions ndots:5\n' });
    expect(JSON.parse(String(r.stdout)).candidates).toHaveLength(2);
    const c = await execa(process.execPath, [bundle, 'conntrack', '--json'], { cwd: dir, reject: false, input: readFixture('conntrack/conntrack-S-old-searched-weave3287.txt') });
    expect(c.exitCode).toBe(1);
    expect(JSON.parse(String(c.stdout)).counters.insert_failed).toBe(199);
  });
});

describe('output into a closed pipe (| head)', () => {
  async function closedAfterFirstChunk(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const { spawn } = await import('node:child_process');
    const { BIN: bin } = await import('../helpers/run.js');
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    return { code, stderr };
  }

  it('the output ends, the run does not: dnsbench -s piped into head -1 sends every query and exits 1 (its verdict), not 0', async () => {
    const { startResponder } = await import('../helpers/responders.js');
    const { parseFault } = await import('../../src/dns/faults.js');
    const r = await startResponder({ faults: [parseFault('delay:20')] });
    // Every answer slower than 5 ms: a SLOW line each, written as they come; the first write closes the pipe.
    const res = await closedAfterFirstChunk(['dnsbench', '--server', `127.0.0.1:${r.udpPort}`, '-n', '60', '-c', '4', '-s', '0.005']);
    expect(res.stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
    expect(res.code).toBe(1);
    expect(r.seen.length).toBe(60);
  });

  it('svc on a large dump and help stop quietly, without an EPIPE stack', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-epipe-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const { generateRules } = (await import(new URL('../../bench/gen-kube-proxy.mjs', import.meta.url).href)) as { generateRules: (s: number, e: number) => string };
    const file = join(dir, 'big.txt');
    writeFileSync(file, generateRules(3000, 4));
    for (const args of [['svc', '--file', file], ['help', 'dnsbench']]) {
      const r = await closedAfterFirstChunk(args);
      expect(r.stderr, args.join(' ')).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
      expect([0, 1], args.join(' ')).toContain(r.code);
    }
  });
});

describe('--no-color and --debug before the command', () => {
  it('--no-color works before the command name as after it, on a terminal', async () => {
    const { execa } = await import('execa');
    const { BIN } = await import('../helpers/run.js');
    const hasScript = (await execa('script', ['--version'], { reject: false })).exitCode === 0;
    if (!hasScript && process.env.CI) throw new Error('script (util-linux) is needed for the terminal test');
    if (!hasScript) return;
    const conf = fixture('resolv/kubelet-clusterfirst.conf');
    // script(1) gives the process a pseudo-terminal: colour is on unless asked off.
    const onTerminal = async (args: string): Promise<string> => String((await execa('script', ['-qfec', `"${process.execPath}" "${BIN}" ${args}`, '/dev/null'], { reject: false, stdin: 'ignore', env: { NO_COLOR: '' } })).stdout);
    const escapes = (s: string): number => (s.match(/\u001b\[[0-9;]*m/g) ?? []).length;
    expect(escapes(await onTerminal(`resolv -f ${conf} google.com`))).toBeGreaterThan(0);
    expect(escapes(await onTerminal(`resolv --no-color -f ${conf} google.com`))).toBe(0);
    expect(escapes(await onTerminal(`--no-color resolv -f ${conf} google.com`))).toBe(0);
  });

  it('--debug before the command name is taken', async () => {
    const r = await run(['--debug', 'resolv', '--file', fixture('resolv/kubelet-clusterfirst.conf'), 'google.com']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('');
  });
});

describe('watch: where the stall events go', () => {
  it('in every format but human they are NDJSON on stderr, stdout holding only the result', async () => {
    const pcap = fixture('capture/glibc-sll2.pcap');
    for (const o of ['line', 'json', 'prom']) {
      const r = await run(['watch', '--pcap', pcap, '--timeout', '1', '-o', o]);
      expect(r.exitCode, o).toBe(1);
      const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; outcome: string });
      expect(events.length, o).toBeGreaterThan(0);
      for (const e of events) expect(e.event).toBe('stall');
      expect(r.stdout, o).not.toMatch(/"event"/);
    }
    expect((await run(['watch', '--pcap', pcap, '--timeout', '1', '-o', 'line'])).stdout.trim().split('\n')).toHaveLength(1);
    const human = await run(['watch', '--pcap', pcap, '--timeout', '1']);
    expect(human.stdout).toMatch(/ STALL 127\.0\.0\.1 /);
    expect(human.stderr).toBe('');
  });
});
