/** `k8sdiag merge`: its options, their checks, and the call into src/commands/. */
import { Command } from 'commander';
import { terminalSafe } from '../render/terminal.js';
import { withCommonOptions, emit } from './output.js';
import type { CommonOptions } from './output.js';

export function mergeCommand(): Command {
  return withCommonOptions(
    new Command('merge')
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
    const { LIMITS, streamText } = await import('../input.js');
    const { Merger } = await import('../commands/merge.js');
    const { renderMerge } = await import('../render/merge.js');
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
}
