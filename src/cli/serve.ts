/** `k8sdiag serve`: its options, their checks, and the call into src/commands/. */
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { stopOnSignals } from './signals.js';
import { withCommonOptions, emit, format, collect, intIn, positiveNumber } from './output.js';
import type { CommonOptions } from './output.js';

export function serveCommand(): Command {
  return withCommonOptions(
    new Command('serve')
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
    const { runServe } = await import('../commands/serve.js');
    const { listeningLine, renderServe } = await import('../render/serve.js');
    if (opts.log === '-' && format(opts) !== 'human') throw new UsageError('--log - and --json both write to stdout', 'give --log a file');
    // A zone is a name, checked as resolv and dnsbench -d check theirs.
    const { checkName } = await import('../resolv/expand.js');
    for (const z of opts.zone ?? []) {
      try {
        checkName(z);
      } catch (err) {
        throw new UsageError(`--zone: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    // The signals every long-running command takes (a second one quits at once); a server's end is a signal, so its
    // exit code is its findings', not 130 or 143.
    const stopper = stopOnSignals('stopping, then the counts');
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
        signal: stopper.signal,
        onListening: (p) => process.stderr.write(listeningLine(opts.host, p.udpPort, p.tcpPort, p.faults)),
        onWarning: (m) => process.stderr.write(`k8sdiag serve: ${m}\n`),
      });
      await emit(result, opts, renderServe, process.stderr);
    } finally {
      clearInterval(keepAlive);
      stopper.dispose();
    }
  });
}
