/**
 * The CLI: commander wiring, choice of renderer, exit codes. Nothing else.
 * Importing it runs nothing: src/main.ts (the bin and the bundle) calls main().
 * Exit codes follow grep: 0 healthy, 1 problems found, 2 usage or input error.
 * Command modules are imported lazily so `k8sdiag --version` stays fast.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { UsageError, UserError } from './errors.js';
import { terminalSafe } from './render/terminal.js';
import { stopOnSignals } from './cli/signals.js';
import type { Finding } from './findings.js';
import { SEVERITY_ORDER } from './findings.js';
import { VERSION as version } from './version.js';

interface CommonOptions {
  output: 'human' | 'json' | 'prom' | 'line';
  json?: boolean;
  color?: boolean;
  debug?: boolean;
}

/** The one place the output format is decided: -o json, or its shorthand --json. */
/** The commands with a Prometheus rendering. */
const PROM_COMMANDS = ['dnsbench', 'conntrack', 'svc', 'doctor'];

function format(opts: CommonOptions): 'human' | 'json' | 'prom' | 'line' {
  return opts.json ? 'json' : opts.output;
}

let debug = process.argv.includes('--debug');

function fail(err: unknown): void {
  if (err instanceof UserError) {
    process.stderr.write(terminalSafe(`k8sdiag: ${err.message}\n`));
    if (err.hint !== undefined) process.stderr.write(terminalSafe(`hint: ${err.hint}\n`));
    process.exitCode = err.exitCode;
    return;
  }
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write(terminalSafe(`k8sdiag: internal error: ${err instanceof Error ? err.message : String(err)} (run with --debug for details)\n`));
  process.exitCode = 2;
}

function positiveNumber(name: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0`);
    if (n > max) throw new InvalidArgumentError(`${name} must be at most ${max}`);
    return n;
  };
}

function common(cmd: Command): Command {
  // Each command's help lists the formats it has: prom only where there is a Prometheus rendering.
  const formats = PROM_COMMANDS.includes(cmd.name()) ? ['human', 'json', 'prom', 'line'] : ['human', 'json', 'line'];
  const what = formats.includes('prom')
    ? 'output format (prom: Prometheus text; line: the worst finding in one line, for node-problem-detector)'
    : 'output format (line: the worst finding in one line, for node-problem-detector)';
  return cmd
    .addOption(new Option('-o, --output <format>', what).choices(formats).default('human'))
    .option('--json', 'one JSON document on stdout, nothing else (-o json)')
    .option('--no-color', 'no colour (also: NO_COLOR=1, or stdout not a terminal)')
    .option('--debug', 'show stack traces of internal errors');
}

/**
 * Print a result in the chosen format and set the exit code from its findings.
 * Human output goes to stdout unless the command says otherwise (serve: stderr).
 */
async function emit<R extends { findings: readonly { severity: Finding['severity'] }[] }>(
  result: R,
  opts: CommonOptions,
  human: (style: import('./render/style.js').Style, r: R) => string,
  humanStream: NodeJS.WriteStream = process.stdout,
  prom?: (r: R) => string,
): Promise<void> {
  const { exitCodeFor } = await import('./findings.js');
  if (format(opts) === 'json') {
    await (await import('./render/json.js')).writeJson(process.stdout, result);
  } else if (format(opts) === 'line') {
    const why = (result as { couldNotRun?: unknown }).couldNotRun;
    process.stdout.write(`${typeof why === 'string' ? `UNKNOWN: ${why}` : oneLine(result.findings)}\n`);
  } else if (format(opts) === 'prom') {
    // Unreachable from the command line: -o's choices hold prom only for the commands that pass a renderer.
    if (prom === undefined) throw new Error('no Prometheus rendering for this command');
    process.stdout.write(prom(result));
  } else {
    const { makeStyle, colorWanted } = await import('./render/style.js');
    humanStream.write(terminalSafe(human(makeStyle(colorWanted(opts.color, humanStream)), result)));
  }
  process.exitCode = exitCodeFor(result.findings);
}

/**
 * The worst finding in one line (node-problem-detector shows a custom plugin's
 * stdout as the condition's message), or OK.
 */
function oneLine(findings: readonly { severity: Finding['severity']; code?: string; message?: string }[]): string {
  const worst = [...findings].filter((f) => f.severity !== 'info').sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity])[0];
  if (worst === undefined) return 'OK: no problems found';
  const more = findings.filter((f) => f.severity !== 'info').length - 1;
  return `${worst.code ?? 'PROBLEM'}: ${worst.message ?? ''}${more > 0 ? ` (+${more} more)` : ''}`;
}

/** Warnings: with JSON or Prometheus output on stderr (stdout is the document); human output prints them with the report. */
function warn(lines: readonly string[], opts: CommonOptions): void {
  if (format(opts) === 'human') return;
  for (const w of lines) process.stderr.write(terminalSafe(`warning: ${w}\n`));
}

export function buildProgram(): Command {
  const program = new Command('k8sdiag')
    .description('Find out why DNS is slow or failing inside Kubernetes: the conntrack race, table pressure, ndots amplification.')
    .version(version, '-V, --version', 'print the version')
    .option('--debug', 'show stack traces of internal errors')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`k8sdiag: ${str.replace(/^error: /, '').trimEnd()}\n`),
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 healthy, 1 problems found, 2 usage or input error.

Examples:
  k8sdiag resolv google.com                 the names and queries a pod sends for google.com
  conntrack -S | k8sdiag conntrack          insert_failed, drops and table pressure from piped output
  k8sdiag conntrack --live --watch 10       rates of every counter over 10 seconds on this node`,
    );

  common(
    program
      .command('resolv')
      .summary('expand a name into the exact queries a pod\'s resolver sends')
      .description(
        'Parse a resolv.conf with glibc or musl semantics and expand NAME into the ordered names the resolver tries, ' +
          'each with its A/AAAA queries. Reports ndots amplification, kubelet search-list limits, nameserver limits and NodeLocalDNS.',
      )
      .argument('[name]', 'host name to expand (e.g. google.com, kubernetes.default, google.com.)')
      .option('-f, --file <path>', 'resolv.conf to read ("-" for stdin)', '/etc/resolv.conf')
      .addOption(new Option('--libc <libc>', 'resolver semantics').choices(['glibc', 'musl']).default('glibc'))
      .addHelpText(
        'after',
        `
Examples:
  k8sdiag resolv google.com
  k8sdiag resolv --file pod-resolv.conf --libc musl api.example.com
  kubectl exec POD -- cat /etc/resolv.conf | k8sdiag resolv --file - google.com --json`,
      ),
  ).action(async (name: string | undefined, opts: CommonOptions & { file: string; libc: 'glibc' | 'musl' }) => {
    const { runResolv } = await import('./commands/resolv.js');
    const { renderResolv } = await import('./render/resolv.js');
    const { renderWarnings } = await import('./render/findings.js');
    const result = await runResolv({
      source: { kind: 'file', path: opts.file },
      libc: opts.libc,
      env: { LOCALDOMAIN: process.env.LOCALDOMAIN, RES_OPTIONS: process.env.RES_OPTIONS },
      ...(name !== undefined ? { name } : {}),
    });
    warn(result.warnings, opts);
    await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderResolv(style, r));
  });

  common(
    program
      .command('conntrack')
      .summary('flag insert_failed, drops and table pressure from conntrack counters')
      .description(
        'Read `conntrack -S`, /proc/net/stat/nf_conntrack, sysctl output and kernel log lines (piped in, from --file, ' +
          'or live from this machine) and report the conntrack race (insert_failed), drops, early drops and table pressure.',
      )
      .option('-f, --file <path>', 'read this file ("-" for stdin)')
      .option('--live', 'read this machine: /proc, /proc/sys/net/netfilter, conntrack -S, dmesg')
      .option('-w, --watch <seconds>', 'sample twice this many seconds apart and report rates (live)', positiveNumber('--watch', 3600))
      .addHelpText(
        'after',
        `
Without --file or --live, piped stdin is read; with nothing piped, this machine is read live.

Examples:
  conntrack -S | k8sdiag conntrack
  k8sdiag conntrack --file node-dump.txt --json
  k8sdiag conntrack --live --watch 10`,
      ),
  ).action(async (opts: CommonOptions & { file?: string; live?: boolean; watch?: number }) => {
    const { chooseSource } = await import('./input.js');
    const { runConntrack } = await import('./commands/conntrack.js');
    const { renderConntrack } = await import('./render/conntrack.js');
    const { renderWarnings } = await import('./render/findings.js');
    if (opts.file !== undefined && opts.watch !== undefined) throw new UsageError('--watch samples this machine twice: it cannot be used with --file');
    const stopper = stopOnSignals('sampling again now and reporting the shorter interval');
    try {
      const result = await runConntrack({
        source: chooseSource({ file: opts.file, live: opts.live, forceLive: opts.watch !== undefined }),
        ...(opts.watch !== undefined ? { watchSeconds: opts.watch } : {}),
        signal: stopper.signal,
        onProgress: (message) => {
          if (process.stderr.isTTY) process.stderr.write(`${message}\n`);
        },
      });
      warn(result.warnings, opts);
      await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderConntrack(style, r), process.stdout, (await import('./render/prom.js')).promConntrack);
      const stopped = stopper.exitCode();
      if (stopped !== undefined) process.exitCode = stopped;
    } finally {
      stopper.dispose();
    }
  });

  const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
  const intIn = (name: string, min: number, max: number) => (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };

  common(
    program
      .command('dnsbench')
      .summary('concurrent DNS benchmark that catches the 5 s stalls')
      .description(
        'Send DNS queries over raw UDP sockets, many in flight, print every response slower than --slow as it arrives, ' +
          'then a summary with exact accounting (answered by rcode, timed out, errors), latency percentiles and a histogram. ' +
          'With --resolv, each unit is a lookup done the way glibc or musl does it (search list, A+AAAA from one socket, retries).',
      )
      .option('-c, --concurrency <n>', 'queries (or lookups) in flight', intIn('--concurrency', 1, 16384), 100)
      .option('-n, --number <n>', 'total queries (or lookups); default 1000 unless --duration is given', intIn('--number', 1, 100_000_000))
      .option('--duration <seconds>', 'send for this long (with or instead of -n)', positiveNumber('--duration', 86_400))
      .option('--qps <n>', 'rate limit, queries (or lookups) per second; latency counts from the scheduled time', positiveNumber('--qps', 10_000_000))
      .option('-d, --domain <name>', 'name to query (repeatable)', collect)
      .option('--queries <file>', 'lines of "name [TYPE]" to cycle through')
      .option('-t, --type <type>', 'record type: a name (AAAA), a number (65) or TYPE65', 'A')
      .option('-s, --slow <seconds>', 'print responses (and, with --resolv, lookups) slower than this', positiveNumber('--slow', 3600), 5)
      .option('--timeout <seconds>', 'give up on a query after this long', positiveNumber('--timeout', 3600), 5)
      .option('--server <host>', 'DNS server: 10.96.0.10, ::1, [::1] or [::1]:5353; default: the nameservers in /etc/resolv.conf')
      .option('-p, --port <port>', 'server port', intIn('--port', 1, 65535), 53)
      .option('--tcp', 'retry truncated (TC) replies over TCP (with --resolv the libc decides)')
      .option('--no-progress', 'no progress on stderr (a line every 10 s when stderr is not a terminal)')
      .option('--resolv [file]', 'emulate the pod resolver for each lookup, reading this resolv.conf (default /etc/resolv.conf)')
      .addOption(new Option('--libc <libc>', 'resolver to emulate with --resolv').choices(['glibc', 'musl']).default('glibc'))
      .option('--single-request', 'glibc: send A, wait, then AAAA (overrides the file)')
      .option('--single-request-reopen', 'glibc: like --single-request, AAAA from a new socket (overrides the file)')
      .option('--long-lived', 'glibc: keep the adaptive single-request switch per slot across lookups (a long-running process)')
      .option('--sockets <n>', 'UDP sockets (source ports) to spread queries over; each pins one conntrack entry to one Service endpoint (default 256)', intIn('--sockets', 1, 4096))
      .addHelpText(
        'after',
        `
Examples:
  k8sdiag dnsbench -c 100 -n 10000 -d google.com -s 5
  k8sdiag dnsbench --server 10.96.0.10 --duration 60 --qps 2000 -d kubernetes.default.svc.cluster.local
  k8sdiag dnsbench --resolv -n 200 -c 10 -d google.com          lookups as the pod's glibc does them
  k8sdiag dnsbench --server 127.0.0.1 -p 5353 --json -n 1000 2>slow.ndjson >summary.json

Exit codes: 0 no timeouts and nothing slower than --slow, 1 otherwise, 2 usage error or unreachable server.`,
      ),
  ).action(async (opts: CommonOptions & Omit<import('./commands/dnsbench.js').DnsbenchFlags, 'given'> & { progress: boolean }, cmd: Command) => {
    const { prepareDnsbench, runDnsbench, unreachableReason } = await import('./commands/dnsbench.js');
    const { renderDnsbench, slowLine } = await import('./render/dnsbench.js');
    const { renderWarnings } = await import('./render/findings.js');
    const given = new Set(Object.keys(opts).filter((k) => cmd.getOptionValueSource(k) === 'cli'));
    const { output: _o, json: _j, color: _c, debug: _d, progress: _p, ...flags } = opts;
    const input = await prepareDnsbench({ ...flags, given });

    const stopper = stopOnSignals('stopping: waiting for the queries in flight, then the summary');
    // Progress on stderr: a rewritten line on a terminal; a plain line every 10 s
    // elsewhere (a Job, a DaemonSet, kubectl logs), so a long run is never silent.
    const tty = process.stderr.isTTY === true;
    const showProgress = opts.progress;
    let progressShown = false;
    const clearProgress = (): void => {
      if (progressShown) process.stderr.write('\r\u001b[2K');
      progressShown = false;
    };
    input.signal = stopper.signal;
    input.onSlow = (e) => {
      if (format(opts) !== 'human') process.stderr.write(`${JSON.stringify({ event: 'slow', ...e })}\n`);
      else {
        clearProgress();
        process.stdout.write(`${slowLine(e)}\n`);
      }
    };
    if (showProgress && (tty ? format(opts) === 'human' : true)) {
      input.onProgress = (p) => {
        const line = `${(p.elapsedMs / 1000).toFixed(1)} s  sent ${p.sent}  answered ${p.answered}  timeouts ${p.timeouts}  errors ${p.errors}`;
        if (tty) {
          process.stderr.write(`\r\u001b[2K${line}`);
          progressShown = true;
        } else {
          process.stderr.write(`k8sdiag dnsbench: ${line}\n`);
        }
      };
    }
    try {
      // K8SDIAG_PROGRESS_MS: another interval (the tests use it to see a line soon).
      const every = Number(process.env.K8SDIAG_PROGRESS_MS) > 0 ? Number(process.env.K8SDIAG_PROGRESS_MS) : tty ? 500 : 10_000;
      const result = await runDnsbench(input, every);
      clearProgress();
      warn(result.warnings, opts);
      await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderDnsbench(style, r), process.stdout, (await import('./render/prom.js')).promDnsbench);
      const reason = unreachableReason(result);
      if (reason !== undefined) {
        process.stderr.write(terminalSafe(`k8sdiag: ${reason}\n`));
        process.exitCode = 2;
      }
      const stopped = stopper.exitCode();
      if (stopped !== undefined) process.exitCode = stopped;
    } finally {
      stopper.dispose();
    }
  });

  common(
    program
      .command('serve')
      .summary('a small DNS responder with fault injection')
      .description(
        'Answer every A/AAAA query with fixed addresses on UDP and TCP, and misbehave on request: delay, drop, SERVFAIL, ' +
          'REFUSED, NXDOMAIN for suffixes, wrong IDs, wrong questions, truncation. Run it in one pod and dnsbench in another to ' +
          'measure the network path (DNAT, conntrack) without CoreDNS in the way.',
      )
      .option('--host <addr>', 'address to listen on', '127.0.0.1')
      .option('-p, --port <port>', 'port (0: any free port)', intIn('--port', 0, 65535), 5353)
      .option('--no-tcp', 'UDP only')
      .option('--a <addr>', 'address in A answers (repeatable)', collect)
      .option('--aaaa <addr>', 'address in AAAA answers (repeatable)', collect)
      .option('--ttl <seconds>', 'TTL of answers', intIn('--ttl', 0, 2_147_483_647), 30)
      .option('--zone <suffix>', 'only names under this suffix exist, the rest are NXDOMAIN (repeatable)', collect)
      .option('--fault <spec>', 'KIND[:ARG][@every=N|fraction=F|type=T|count=K|name=SUFFIX,...] (repeatable), KIND one of delay:MS, drop, servfail, refused, nxdomain:SUFFIX, wrong-id, wrong-question, truncate', collect)
      .option('--seed <n>', 'seed for fraction= faults', intIn('--seed', 0, 2 ** 31), 1)
      .option('--log <file>', 'write every query as one JSON line to this file ("-" for stdout)')
      .option('--duration <seconds>', 'stop after this long (default: until Ctrl-C or SIGTERM)', positiveNumber('--duration', 31_536_000))
      .addHelpText(
        'after',
        `
Examples:
  k8sdiag serve --port 5353
  k8sdiag serve --host 0.0.0.0 --port 53 --fault delay:5000@every=100 --fault drop@type=AAAA,fraction=0.01
  k8sdiag serve --zone google.com --fault servfail@every=10 --log - --duration 60`,
      ),
  ).action(async (opts: CommonOptions & { host: string; port: number; tcp: boolean; a?: string[]; aaaa?: string[]; ttl: number; zone?: string[]; fault?: string[]; seed: number; log?: string; duration?: number }) => {
    const { runServe } = await import('./commands/serve.js');
    const { listeningLine, renderServe } = await import('./render/serve.js');
    if (opts.log === '-' && format(opts) !== 'human') throw new UsageError('--log - and --json both write to stdout', 'give --log a file');
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // A server runs until stopped: keep the process alive while it listens.
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      const result = await runServe({
        host: opts.host,
        port: opts.port,
        tcp: opts.tcp,
        a: opts.a,
        aaaa: opts.aaaa,
        ttl: opts.ttl,
        zones: opts.zone,
        faults: opts.fault,
        seed: opts.seed,
        log: opts.log === '-' ? process.stdout : opts.log,
        durationMs: opts.duration !== undefined ? opts.duration * 1000 : undefined,
        signal: ac.signal,
        onListening: (p) => process.stderr.write(listeningLine(opts.host, p.udpPort, p.tcpPort, p.faults)),
        onWarning: (m) => process.stderr.write(`k8sdiag serve: ${m}\n`),
      });
      await emit(result, opts, renderServe, process.stderr);
    } finally {
      clearInterval(keepAlive);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  });

  common(
    program
      .command('svc')
      .summary('where kube-proxy\'s rules really send each Service\'s traffic')
      .description(
        'Read kube-proxy\'s rules (iptables-save, nft list ruleset, ipvsadm -Ln: piped in, from --file, or live) and show each ' +
          'Service port\'s endpoints with their effective share of new connections, on the cluster and the external path, ' +
          'and what is broken: fall-through, unreachable rules, missing or orphan chains, duplicate endpoints, uneven shares, ' +
          'no (local) endpoints.',
      )
      .option('-f, --file <path>', 'read this dump ("-" for stdin)')
      .option('--live', 'run iptables-save, nft list ruleset and ipvsadm -Ln on this machine')
      .option('--service <ns/name[:port]>', 'only this Service (port)')
      .addHelpText(
        'after',
        `
Without --file or --live, piped stdin is read; with nothing piped, this machine is read live.

Examples:
  iptables-save | k8sdiag svc
  k8sdiag svc --live --service kube-system/kube-dns:dns
  nft list ruleset | k8sdiag svc --json`,
      ),
  ).action(async (opts: CommonOptions & { file?: string; live?: boolean; service?: string }) => {
    const { chooseSource } = await import('./input.js');
    const { runSvc } = await import('./commands/svc.js');
    const { renderSvc } = await import('./render/svc.js');
    const { renderWarnings } = await import('./render/findings.js');
    const result = await runSvc({ source: chooseSource({ file: opts.file, live: opts.live }), ...(opts.service !== undefined ? { service: opts.service } : {}) });
    warn(result.warnings, opts);
    await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderSvc(style, r), process.stdout, (await import('./render/prom.js')).promSvc);
  });

  common(
    program
      .command('doctor')
      .summary('name the cause of DNS stalls and its remedy, from probes on this node or pod')
      .description(
        'Read the resolv.conf, the DNS Service\'s endpoints (where the node\'s rules are readable) and the conntrack counters, ' +
          'then probe: raw queries to each nameserver over many source ports, lookups as glibc makes them (A+AAAA from one socket, ' +
          'single-request-reopen, TCP), the name with a trailing dot, and each endpoint directly. Correlate and give a verdict with evidence.',
      )
      .option('--resolv <file>', 'the pod\'s resolv.conf ("-" for stdin)', '/etc/resolv.conf')
      .option('--name <name>', 'name to look up (repeatable; default google.com)', collect)
      .option('--budget <seconds>', 'upper bound on the probes\' time', positiveNumber('--budget', 600), 30)
      .option('--endpoints <addr...>', 'the DNS Service\'s endpoints (host[:port]), where the node\'s rules cannot be read')
      .option('-p, --port <port>', 'DNS port', intIn('--port', 1, 65535), 53)
      .addOption(new Option('--libc <libc>', "the workload's libc: auto reads it from the processes of the container debugged (kubectl debug's target), or --pid's").choices(['auto', 'glibc', 'musl']).default('auto'))
      .option('--pid <pid>', "the workload's process, whose filesystem tells its libc", intIn('--pid', 1, 4_194_304))
      .option('--coredns-metrics <url>', "CoreDNS's /metrics page, read before and after the probes (repeatable; default: each endpoint's :9153/metrics)", collect)
      .addHelpText(
        'after',
        `
Exit codes: 0 no cause of stalls found, 1 a cause found (the nameserver answering nothing included), 2 could not run
(bad flags, no resolv.conf, no socket); 130 or 143 when stopped by SIGINT or SIGTERM, after the report of what ran.

Examples:
  k8sdiag doctor                                          in a pod (kubectl debug --target=CONTAINER) or on a node
  k8sdiag doctor --endpoints 10.244.1.5 10.244.2.7         probe the CoreDNS pods directly too
  k8sdiag doctor --resolv pod-resolv.conf --name api.example.com --libc musl -o json`,
      ),
  ).action(async (opts: CommonOptions & { resolv: string; name?: string[]; budget: number; endpoints?: string[]; port: number; libc: 'auto' | 'glibc' | 'musl'; pid?: number; corednsMetrics?: string[] }) => {
    const { runDoctor } = await import('./commands/doctor.js');
    const { renderDoctor } = await import('./render/doctor.js');
    const stopper = stopOnSignals('stopping the probes, then reporting what they gathered');
    try {
      const result = await runDoctor({
        resolv: { kind: 'file', path: opts.resolv },
        ...(opts.name ? { names: opts.name } : {}),
        budgetSeconds: opts.budget,
        ...(opts.endpoints ? { endpoints: opts.endpoints } : {}),
        port: opts.port,
        libc: opts.libc,
        ...(opts.pid !== undefined ? { pid: opts.pid } : {}),
        ...(opts.corednsMetrics ? { corednsMetrics: opts.corednsMetrics } : {}),
        signal: stopper.signal,
        onProgress: (m) => process.stderr.write(`${m}\n`),
      });
      await emit(result, opts, renderDoctor, process.stdout, (await import('./render/prom.js')).promDoctor);
      if (result.couldNotRun !== null) {
        process.stderr.write(terminalSafe(`k8sdiag: ${result.couldNotRun}\n`));
        process.exitCode = 2;
      }
      const stopped = stopper.exitCode();
      if (stopped !== undefined) process.exitCode = stopped;
    } finally {
      stopper.dispose();
    }
  });

  common(
    program
      .command('merge')
      .summary('combine the JSON results of many runs and nodes, exactly')
      .description(
        'Read k8sdiag JSON documents (one per file, NDJSON, concatenated, or prefixed as `kubectl logs --prefix` prints them) and ' +
          'merge them per schema: counters add, histograms merge exactly, rates are recomputed; nodes ranked by stall rate; ' +
          'findings grouped by code with their nodes.',
      )
      .argument('[files...]', 'files to read (default: stdin)')
      .addHelpText(
        'after',
        `
Examples:
  kubectl logs -l app.kubernetes.io/name=k8sdiag --prefix | k8sdiag merge
  k8sdiag merge node-a.json node-b.json -o json`,
      ),
  ).action(async (files: string[], opts: CommonOptions) => {
    const { LIMITS, streamText } = await import('./input.js');
    const { Merger } = await import('./commands/merge.js');
    const { renderMerge } = await import('./render/merge.js');
    // Streamed: each file read in chunks and its documents folded in as they close, so any number of them fits.
    const merger = new Merger();
    for (const f of files.length > 0 ? files : ['-']) {
      const split = merger.source(f === '-' ? 'stdin' : f, LIMITS.merge);
      await streamText(f, (chunk) => split.feed(chunk));
      split.end();
    }
    const result = merger.result();
    for (const s of result.skipped) process.stderr.write(terminalSafe(`warning: ${s}\n`));
    await emit(result, opts, renderMerge);
  });

  program.hook('preAction', (_this, actionCommand) => {
    const opts = actionCommand.opts() as CommonOptions;
    if (opts.debug) debug = true;
    // Formats are checked before the command starts (commander's choices refuse a format the command has not).
    if (opts.json && actionCommand.getOptionValueSource('output') === 'cli' && opts.output !== 'json') {
      throw new UsageError(`--json and -o ${opts.output} ask for two formats: give one`);
    }
  });
  return program;
}

/**
 * Output into a closed pipe (`k8sdiag svc | head -1`): stop quietly, as every
 * Unix filter does, instead of an unhandled EPIPE.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    // Any other error of the output itself (EIO on a closed terminal, ENOSPC on a full disk): one line where it can
    // still be written, exit 2, never a stack trace from inside the listener.
    try {
      if (stream !== process.stderr) process.stderr.write(`k8sdiag: cannot write the output: ${err.code ?? err.message}\n`);
    } catch {
      // stderr is gone too
    }
    process.exit(2);
  });
}

export async function main(argv: string[] = process.argv): Promise<void> {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are successes; everything else commander rejects is usage.
      process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' ? 0 : 2;
      return;
    }
    fail(err);
  }
}

