/** `k8sdiag conntrack`: its options, their checks, and the call into src/commands/. */
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { stopOnSignals } from './signals.js';
import { withCommonOptions, emit, warn, positiveNumber } from './output.js';
import type { CommonOptions } from './output.js';

export function conntrackCommand(): Command {
  return withCommonOptions(
    new Command('conntrack')
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
    const { chooseSource } = await import('../input.js');
    const { runConntrack } = await import('../commands/conntrack.js');
    const { renderConntrack } = await import('../render/conntrack.js');
    const { renderWarnings } = await import('../render/findings.js');
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
      await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderConntrack(style, r), process.stdout, (await import('../render/prom.js')).promConntrack);
      const stopped = stopper.exitCode();
      if (stopped !== undefined) process.exitCode = stopped;
    } finally {
      stopper.dispose();
    }
  });
}
