/** `k8sdiag svc`: its options, their checks, and the call into src/commands/. */
import { Command } from 'commander';
import { withCommonOptions, emit, warn } from './output.js';
import type { CommonOptions } from './output.js';

export function svcCommand(): Command {
  return withCommonOptions(
    new Command('svc')
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
    const { chooseSource } = await import('../input.js');
    const { runSvc } = await import('../commands/svc.js');
    const { renderSvc } = await import('../render/svc.js');
    const { renderWarnings } = await import('../render/findings.js');
    const result = await runSvc({ source: chooseSource({ file: opts.file, live: opts.live }), ...(opts.service !== undefined ? { service: opts.service } : {}) });
    warn(result.warnings, opts);
    await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderSvc(style, r), process.stdout, (await import('../render/prom.js')).promSvc);
  });
}
