/**
 * The CLI: commander wiring, choice of renderer, exit codes. Nothing else.
 * Exit codes follow grep: 0 healthy, 1 problems found, 2 usage or input error.
 * Command modules are imported lazily so `k8sdiag --version` stays fast.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { UserError } from './errors.js';

/** Set by the one-file bundle (scripts/bundle.mjs), which ships without package.json. */
declare const __K8SDIAG_VERSION__: string | undefined;
const version: string =
  typeof __K8SDIAG_VERSION__ === 'string'
    ? __K8SDIAG_VERSION__
    : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface CommonOptions {
  json?: boolean;
  color?: boolean;
  debug?: boolean;
}

let debug = process.argv.includes('--debug');

function fail(err: unknown): void {
  if (err instanceof UserError) {
    process.stderr.write(`k8sdiag: ${err.message}\n`);
    if (err.hint !== undefined) process.stderr.write(`hint: ${err.hint}\n`);
    process.exitCode = err.exitCode;
    return;
  }
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write(`k8sdiag: internal error: ${err instanceof Error ? err.message : String(err)} (run with --debug for details)\n`);
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
  return cmd
    .option('--json', 'one JSON document on stdout, nothing else')
    .option('--no-color', 'no colour (also: NO_COLOR=1, or stdout not a terminal)')
    .option('--debug', 'show stack traces of internal errors');
}

async function emit<R extends { findings: ReadonlyArray<{ severity: string }> }>(
  result: R,
  opts: CommonOptions,
  human: (style: import('./render/style.js').Style, r: R) => string,
): Promise<void> {
  const { exitCodeFor } = await import('./findings.js');
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    const { makeStyle, colorWanted } = await import('./render/style.js');
    process.stdout.write(human(makeStyle(colorWanted(opts.color)), result));
  }
  process.exitCode = exitCodeFor(result.findings as Parameters<typeof exitCodeFor>[0]);
}

function warn(lines: readonly string[], opts: CommonOptions): void {
  if (!opts.json) return; // human output prints warnings with the report
  for (const w of lines) process.stderr.write(`warning: ${w}\n`);
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
    const { readTextFile } = await import('./input.js');
    const { runResolv } = await import('./commands/resolv.js');
    const { renderResolv } = await import('./render/resolv.js');
    const { renderWarnings } = await import('./render/findings.js');
    const text = await readTextFile(opts.file);
    const input: import('./commands/resolv.js').ResolvCommandInput = {
      text,
      file: opts.file === '-' ? 'stdin' : opts.file,
      libc: opts.libc,
      env: { LOCALDOMAIN: process.env.LOCALDOMAIN, RES_OPTIONS: process.env.RES_OPTIONS },
    };
    if (name !== undefined) input.name = name;
    const result = runResolv(input);
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
    const { stdinIsPiped, readStdin, readTextFile } = await import('./input.js');
    const { runConntrack } = await import('./commands/conntrack.js');
    const { renderConntrack } = await import('./render/conntrack.js');
    const { renderWarnings } = await import('./render/findings.js');
    const { UsageError } = await import('./errors.js');
    if (opts.file !== undefined && opts.live) throw new UsageError('--file and --live are mutually exclusive');
    if (opts.file !== undefined && opts.watch !== undefined) throw new UsageError('--watch samples this machine twice: it cannot be used with --file');
    let source: import('./commands/conntrack.js').ConntrackSource;
    if (opts.file !== undefined) {
      source = { kind: 'text', text: await readTextFile(opts.file), origin: opts.file === '-' ? 'stdin' : opts.file };
    } else if (!opts.live && opts.watch === undefined && stdinIsPiped()) {
      source = { kind: 'text', text: await readStdin(), origin: 'stdin' };
    } else {
      source = { kind: 'live' };
    }
    const ac = new AbortController();
    const onSigint = (): void => ac.abort();
    process.once('SIGINT', onSigint);
    try {
      const result = await runConntrack({
        source,
        ...(opts.watch !== undefined ? { watchSeconds: opts.watch } : {}),
        signal: ac.signal,
        onWaiting: (s) => {
          if (process.stderr.isTTY) process.stderr.write(`sampling again in ${s} s (Ctrl-C to stop early)...\n`);
        },
      });
      warn(result.warnings, opts);
      await emit(result, opts, (style, r) => renderWarnings(style, r.warnings) + renderConntrack(style, r));
    } finally {
      process.off('SIGINT', onSigint);
    }
  });

  program.hook('preAction', (_this, actionCommand) => {
    if ((actionCommand.opts() as CommonOptions).debug) debug = true;
  });
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are successes; everything else commander rejects is usage.
      process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
      return;
    }
    fail(err);
  }
}

await main();
