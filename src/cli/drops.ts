/** `k8sdiag drops`: its options, their checks, and the call into src/commands/. */
import { Command, Option } from 'commander';
import { stopOnSignals } from './signals.js';
import { withCommonOptions, emit, intIn, positiveNumber, repeatedIn } from './output.js';
import type { CommonOptions } from './output.js';

export function dropsCommand(): Command {
  return withCommonOptions(
    new Command('drops')
      .summary("the DNS packets this node's kernel dropped (bpftrace), and the DNS flows never replied (conntrack events)")
      .description(
        "Trace the kernel's skb:kfree_skb tracepoint with bpftrace and report every DNS packet (to or from port 53 and each " +
          '--dns-port, UDP and TCP, IPv4 and IPv6) it dropped: the 5-tuple, the drop reason by the running kernel\'s own name, ' +
          'the kernel function, the network namespace; counted per reason, function and endpoint. Needs root with CAP_BPF and ' +
          'CAP_SYS_ADMIN, bpftrace, tracefs and a kernel with drop reasons (5.17+). Beside it, conntrack\'s own events (conntrack -E, ' +
          'NET_ADMIN only) give every DNS flow of this network namespace: the endpoint a Service address was DNATed to, and whether ' +
          'it ever replied; counted per endpoint. Each source runs where it can (--source), and a missing one is said.',
      )
      .option('--duration <seconds>', 'trace for this long (default: until Ctrl-C or SIGTERM)', positiveNumber('--duration', 86_400))
      .option('--dns-port <port>', 'a port that carries DNS (repeatable; default 53)', repeatedIn(intIn('--dns-port', 1, 65535)))
      .addOption(new Option('--source <source>', 'the kernel\'s drops (bpf), conntrack\'s events (conntrack), or each where it can run').choices(['auto', 'bpf', 'conntrack']).default('auto'))
      .option('--pods <file>', 'kubectl get pods -A -o json (or -o wide) output: name each drop\'s pod (by its network namespace, and by address) and each endpoint\'s')
      .option('--timeout <seconds>', 'a flow unreplied this long is unreplied: the resolver timeout', positiveNumber('--timeout', 3600), 5)
      .addHelpText(
        'after',
        `
Examples:
  k8sdiag drops --duration 30                              on a node (kubectl debug node/NAME --profile=sysadmin)
  k8sdiag drops --duration 60 -o json
  k8sdiag drops --source conntrack --duration 60         with NET_ADMIN only (kubectl debug node/NAME --profile=netadmin)

Exit codes: 0 no DNS packet dropped (fewer than 3 at one place) and no flows unreplied beyond chance, 1 a finding,
2 usage error or neither source can run here;
130 or 143 when stopped by SIGINT or SIGTERM, after the report of what was seen.`,
      ),
  ).action(async (opts: CommonOptions & { duration?: number; dnsPort?: number[]; source: 'auto' | 'bpf' | 'conntrack'; timeout: number; pods?: string }) => {
    const { runDrops } = await import('../commands/drops.js');
    const { renderDrops } = await import('../render/drops.js');
    const stopper = stopOnSignals('stopping the trace, then the summary');
    try {
      const result = await runDrops({
        ...(opts.duration !== undefined ? { durationS: opts.duration } : {}),
        dnsPorts: opts.dnsPort ?? [53],
        source: opts.source,
        ...(opts.pods !== undefined ? { podsFile: opts.pods } : {}),
        timeoutS: opts.timeout,
        signal: stopper.signal,
        onListening: (what) => process.stderr.write(`k8sdiag drops: watching ${what}\n`),
      });
      await emit(result, opts, renderDrops, process.stdout);
      const stopped = stopper.exitCode();
      if (stopped !== undefined) process.exitCode = stopped;
    } finally {
      stopper.dispose();
    }
  });
}
