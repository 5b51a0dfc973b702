/** `k8sdiag dnsbench`: its options, their checks, and the call into src/commands/. */
import { Command, Option } from 'commander';
import { terminalSafe } from '../render/terminal.js';
import { stopOnSignals } from './signals.js';
import { withCommonOptions, emit, warn, format, collect, intIn, positiveNumber } from './output.js';
import type { CommonOptions } from './output.js';

export function dnsbenchCommand(): Command {
  return withCommonOptions(
    new Command('dnsbench')
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
      .option('-d, --domain <name>', 'name to query (repeatable; default google.com)', collect)
      .option('--queries <file>', 'lines of "name [TYPE]" to cycle through')
      .option('-t, --type <type>', 'record type: a name (AAAA), a number (65) or TYPE65', 'A')
      .option('-s, --slow <seconds>', 'print responses (and, with --resolv, lookups) slower than this', positiveNumber('--slow', 3600), 5)
      .option('--timeout <seconds>', 'give up on a query after this long', positiveNumber('--timeout', 3600), 5)
      .option('--server <host>', 'DNS server: an address (10.96.0.10, ::1), v4:port (10.96.0.10:5353), [v6]:port ([::1]:5353), or a host name, looked up once; default: the nameservers in /etc/resolv.conf')
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
  k8sdiag dnsbench -c 100 -n 10000 -d google.com -s 5     to the nameservers of /etc/resolv.conf
  k8sdiag dnsbench --server 10.96.0.10 --duration 60 --qps 2000 -d kubernetes.default.svc.cluster.local
  k8sdiag dnsbench --resolv -n 200 -c 10 -d google.com          lookups as the pod's glibc does them
  k8sdiag dnsbench --server 127.0.0.1 -p 5353 --json -n 1000 2>slow.ndjson >summary.json

Exit codes: 0 no timeouts and nothing slower than --slow, 1 otherwise, 2 usage error or unreachable server; 130 or 143
when stopped by SIGINT or SIGTERM, after the summary of what ran.`,
      ),
  ).action(async (opts: CommonOptions & Omit<import('../commands/dnsbench.js').DnsbenchFlags, 'given'> & { progress: boolean }, cmd: Command) => {
    const { prepareDnsbench, runDnsbench, unreachableReason } = await import('../commands/dnsbench.js');
    const { renderDnsbench, slowLine } = await import('../render/dnsbench.js');
    const { renderWarnings } = await import('../render/findings.js');
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
      await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderDnsbench(style, r), process.stdout, (await import('../render/prom.js')).promDnsbench);
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
}
