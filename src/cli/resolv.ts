/** `k8sdiag resolv`: its options, their checks, and the call into src/commands/. */
import { Command, Option } from 'commander';
import { withCommonOptions, emit, warn } from './output.js';
import type { CommonOptions } from './output.js';

export function resolvCommand(): Command {
  return withCommonOptions(
    new Command('resolv')
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
    const { runResolv } = await import('../commands/resolv.js');
    const { renderResolv } = await import('../render/resolv.js');
    const { renderWarnings } = await import('../render/findings.js');
    const result = await runResolv({
      source: { kind: 'file', path: opts.file },
      libc: opts.libc,
      env: { LOCALDOMAIN: process.env.LOCALDOMAIN, RES_OPTIONS: process.env.RES_OPTIONS },
      ...(name !== undefined ? { name } : {}),
    });
    warn(result.warnings, opts);
    await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderResolv(style, r));
  });
}
