/**
 * The CLI: the program and its commands, assembled; each command is built in src/cli/<command>.ts, the output and
 * exit codes in src/cli/output.ts. Importing it runs nothing: src/main.ts (the bin and the bundle) calls main().
 * Exit codes follow grep: 0 healthy, 1 problems found, 2 usage or input error.
 */
import { Command, CommanderError } from 'commander';
import { escapeControls } from './text.js';
import { UsageError } from './errors.js';
import { resolvCommand } from './cli/resolv.js';
import { conntrackCommand } from './cli/conntrack.js';
import { dnsbenchCommand } from './cli/dnsbench.js';
import { serveCommand } from './cli/serve.js';
import { svcCommand } from './cli/svc.js';
import { doctorCommand } from './cli/doctor.js';
import { mergeCommand } from './cli/merge.js';
import { watchCommand } from './cli/watch.js';
import { dropsCommand } from './cli/drops.js';
import { fail, quietOnClosedPipe, sayBounds, setDebug } from './cli/output.js';
import type { CommonOptions } from './cli/output.js';
import { VERSION as version } from './version.js';

export function buildProgram(): Command {
  const program = new Command('k8sdiag')
    .description('Find out why DNS is slow or failing inside Kubernetes: the conntrack race, table pressure, ndots amplification.')
    .version(version, '-V, --version', 'print the version')
    .option('--debug', 'show stack traces of internal errors')
    .option('--no-color', 'no colour (also: NO_COLOR=1, or stdout not a terminal)')
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
  for (const cmd of [resolvCommand(), conntrackCommand(), dnsbenchCommand(), serveCommand(), svcCommand(), doctorCommand(), mergeCommand(), watchCommand(), dropsCommand()]) {
    sayBounds(cmd);
    program.addCommand(cmd.copyInheritedSettings(program));
  }

  program.hook('preAction', (_this, actionCommand) => {
    const opts = actionCommand.opts() as CommonOptions;
    if (opts.debug || program.opts<{ debug?: boolean }>().debug) setDebug();
    // --no-color before the command's name counts as after it.
    if (program.opts<{ color?: boolean }>().color === false) actionCommand.setOptionValue('color', false);
    // Formats are checked before the command starts (commander's choices refuse a format the command has not).
    if (opts.json && actionCommand.getOptionValueSource('output') === 'cli' && opts.output !== 'json') {
      throw new UsageError(`--json and -o ${opts.output} ask for two formats: give one`);
    }
  });
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  const program = buildProgram();
  // `help NAME` for a command there is not: the same usage error as `NAME` itself, not the general help and exit 0.
  const words = argv.slice(2).filter((a) => !a.startsWith('-'));
  if (words[0] === 'help' && words[1] !== undefined && !program.commands.some((c) => c.name() === words[1] || c.aliases().includes(words[1]!))) {
    process.stderr.write(`k8sdiag: unknown command '${escapeControls(words[1])}'\n`);
    process.exitCode = 2;
    return;
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are successes; everything else commander rejects is usage.
      process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' ? 0 : 2;
      return;
    }
    fail(err);
  }
}

