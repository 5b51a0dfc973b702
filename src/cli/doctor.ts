/** `k8sdiag doctor`: its options, their checks, and the call into src/commands/. */
import { Command, Option } from 'commander';
import { terminalSafe } from '../render/terminal.js';
import { stopOnSignals } from './signals.js';
import { withCommonOptions, emit, collect, intIn, positiveNumber } from './output.js';
import type { CommonOptions } from './output.js';

export function doctorCommand(): Command {
  return withCommonOptions(
    new Command('doctor')
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
      .option('--kernel', "read the kernel's drops (bpftrace) and conntrack's events during the probes, and say whether they corroborate the cause (the sources of drops; on a node: kubectl debug node/NAME --profile=sysadmin)")
      .option('--watch <seconds>', "watch the real pods' DNS (tcpdump) for this long before the probes, and say whether it shows the probes' cause; 0: not at all (default: during the probes, on a node where tcpdump is installed)", intIn('--watch', 0, 3600))
      .option('--coredns-metrics <url>', "CoreDNS's /metrics page, read over an interval before the probes (its background) and after them (repeatable; default: each endpoint's :9153/metrics)", collect)
      .addHelpText(
        'after',
        `
Exit codes: 0 no cause of stalls found, 1 a cause found (the nameserver answering nothing included), 2 could not run
(bad flags, no resolv.conf, no socket); 130 or 143 when stopped by SIGINT or SIGTERM, after the report of what ran.

Examples:
  k8sdiag doctor                                          in a pod (kubectl debug --target=CONTAINER) or on a node
  k8sdiag doctor --endpoints 10.244.1.5 10.244.2.7         probe the CoreDNS pods directly too
  k8sdiag doctor --watch 30                               30 s of the real pods' DNS first, then the probes
  k8sdiag doctor --resolv pod-resolv.conf --name api.example.com --libc musl -o json`,
      ),
  ).action(async (opts: CommonOptions & { resolv: string; name?: string[]; budget: number; endpoints?: string[]; port: number; libc: 'auto' | 'glibc' | 'musl'; pid?: number; corednsMetrics?: string[]; watch?: number; kernel?: boolean }) => {
    const { runDoctor } = await import('../commands/doctor.js');
    const { renderDoctor } = await import('../render/doctor.js');
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
        ...(opts.watch !== undefined ? { watchS: opts.watch } : {}),
        ...(opts.kernel === true ? { kernel: true } : {}),
        signal: stopper.signal,
        onProgress: (m) => process.stderr.write(`${m}\n`),
      });
      await emit(result, opts, renderDoctor, process.stdout, (await import('../render/prom.js')).promDoctor);
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
}
