/** `k8sdiag watch`: its options, their checks, and the call into src/commands/. */
import { Command } from 'commander';
import { stopOnSignals } from './signals.js';
import { withCommonOptions, emit, format, intIn, positiveNumber, repeatedIn } from './output.js';
import type { CommonOptions } from './output.js';

interface WatchFlags {
  pcap?: string;
  interface: string;
  duration?: number;
  dnsPort: number[];
  timeout: number;
  slow?: number;
  pods?: string;
  kernel?: boolean;
}

export function watchCommand(): Command {
  return withCommonOptions(
    new Command('watch')
      .summary("see the real pods' DNS: unanswered queries, 5 s resends, by pod and by endpoint")
      .description(
        'Capture the DNS of every pod on this node with tcpdump (or read a capture taken elsewhere), pair each query with its ' +
          'answer, and report the queries that went unanswered or were sent again after a wait, with the client, the name and the ' +
          'endpoint the query was DNATed to; then a summary per endpoint and per client. Passive: it sends nothing.',
      )
      .option('--pcap <file>', 'read this pcap or pcapng capture ("-" for stdin) instead of capturing')
      .option('-i, --interface <name>', 'the interface tcpdump captures on', 'any')
      .option('--duration <seconds>', 'capture for this long (default: until Ctrl-C or SIGTERM)', positiveNumber('--duration', 86_400 * 7))
      .option('--dns-port <port>', 'a port that carries DNS (repeatable; default 53)', repeatedIn(intIn('--dns-port', 1, 65535)))
      .option('--timeout <seconds>', 'a query unanswered for this long counts as lost: the resolver timeout', positiveNumber('--timeout', 3600), 5)
      .option('-s, --slow <seconds>', 'print answered queries slower than this as they happen (default: the timeout)', positiveNumber('--slow', 3600))
      .option('--pods <file>', 'kubectl get pods -A -o json (or -o wide) output: name clients and endpoints by pod')
      .option('--kernel', "give each stalled query the kernel's evidence: a drop on this node (bpftrace), conntrack's flow, or lost beyond the node (the sources of drops)")
      .addHelpText(
        'after',
        `
Examples:
  k8sdiag watch --duration 60                              on a node (root, or kubectl debug node/NAME --profile=netadmin)
  kubectl get pods -A -o json > pods.json; k8sdiag watch --pods pods.json -o json
  tcpdump -i any -w - port 53 | k8sdiag watch --pcap -
  k8sdiag watch --pcap capture.pcapng --timeout 5
  k8sdiag watch --kernel --duration 60                     on a node (kubectl debug node/NAME --profile=sysadmin)

Exit codes: 0 every query answered, 1 a finding (unanswered queries, the race's signature), 2 usage error or no capture;
130 or 143 when stopped by SIGINT or SIGTERM, after the report of what was seen.`,
      ),
  ).action(async (opts: CommonOptions & WatchFlags & { dnsPort?: number[] }) => {
    const { runWatch } = await import('../commands/watch.js');
    const { renderWatch, stallLine } = await import('../render/watch.js');
    const stopper = stopOnSignals('stopping the capture, then the summary');
    try {
      const result = await runWatch({
        ...(opts.pcap !== undefined ? { pcap: opts.pcap } : {}),
        iface: opts.interface,
        ...(opts.duration !== undefined ? { durationS: opts.duration } : {}),
        dnsPorts: opts.dnsPort ?? [53],
        timeoutS: opts.timeout,
        ...(opts.slow !== undefined ? { slowS: opts.slow } : {}),
        ...(opts.pods !== undefined ? { podsFile: opts.pods } : {}),
        ...(opts.kernel === true ? { kernel: true, onKernel: (what: string) => process.stderr.write(`k8sdiag watch: kernel evidence from ${what}\n`) } : {}),
        signal: stopper.signal,
        onListening: (line) => process.stderr.write(`k8sdiag watch: tcpdump ${line}\n`),
        onStall: (e) => {
          if (format(opts) === 'human') process.stdout.write(`${stallLine(e)}\n`);
          else process.stderr.write(`${JSON.stringify(e)}\n`);
        },
      });
      await emit(result, opts, renderWatch, process.stdout, (await import('../render/prom.js')).promWatch);
      const stopped = stopper.exitCode();
      if (stopped !== undefined) process.exitCode = stopped;
    } finally {
      stopper.dispose();
    }
  });
}
