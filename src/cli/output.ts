/**
 * What every command shares: its common options (-o, --json, --no-color, --debug), the option parsers, the output
 * (one format chosen once, emit, -o line, warnings), the exit code from the findings, and errors as one line.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { UserError } from '../errors.js';
import type { Finding } from '../findings.js';
import { SEVERITY_ORDER } from '../findings.js';
import { terminalSafe } from '../render/terminal.js';
import { escapeControls } from '../text.js';

export interface CommonOptions {
  output: 'human' | 'json' | 'prom' | 'line';
  json?: boolean;
  color?: boolean;
  debug?: boolean;
}

/** The commands with a Prometheus rendering. */
const PROM_COMMANDS = ['dnsbench', 'conntrack', 'svc', 'doctor', 'watch'];

/** The one place the output format is decided: -o json, or its shorthand --json. */
export function format(opts: CommonOptions): 'human' | 'json' | 'prom' | 'line' {
  return opts.json ? 'json' : opts.output;
}

let debug = process.argv.includes('--debug');

/** --debug given to the command that runs (a later position than the first word). */
export function setDebug(): void {
  debug = true;
}

export function fail(err: unknown): void {
  if (err instanceof UserError) {
    // An error may quote its input: every control character escaped, colour sequences too (errors carry no colour).
    process.stderr.write(`k8sdiag: ${escapeControls(err.message)}\n`);
    if (err.hint !== undefined) process.stderr.write(`hint: ${escapeControls(err.hint)}\n`);
    process.exitCode = err.exitCode;
    return;
  }
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write(terminalSafe(`k8sdiag: internal error: ${err instanceof Error ? err.message : String(err)} (run with --debug for details)\n`));
  process.exitCode = 2;
}

/** An option's parser that knows its bounds, so help and docs can say them. */
export type Bounded<T> = ((v: string, prev?: T) => T) & { bounds: { whole: boolean; min: number; max: number } };
const bounded = <T>(parse: (v: string, prev?: T) => T, whole: boolean, min: number, max: number): Bounded<T> => Object.assign(parse, { bounds: { whole, min, max } });

/** The bounds as help says them: "1-16384" for whole numbers, "at most 600" for any number above 0. */
export const boundsText = (b: Bounded<unknown>['bounds']): string => (b.whole ? `${b.min}-${b.max}` : `> 0, at most ${b.max}`);

export function positiveNumber(name: string, max: number): Bounded<number> {
  return bounded((v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0`);
    if (n > max) throw new InvalidArgumentError(`${name} must be at most ${max}`);
    return n;
  }, false, 0, max);
}

export function withCommonOptions(cmd: Command): Command {
  // Each command's help lists the formats it has: prom only where there is a Prometheus rendering.
  const formats = PROM_COMMANDS.includes(cmd.name()) ? ['human', 'json', 'prom', 'line'] : ['human', 'json', 'line'];
  const what = formats.includes('prom')
    ? 'output format (prom: Prometheus text; line: the worst finding in one line, for node-problem-detector)'
    : 'output format (line: the worst finding in one line, for node-problem-detector)';
  return cmd
    .addOption(new Option('-o, --output <format>', what).choices(formats).default('human'))
    .option('--json', 'one JSON document on stdout, nothing else (-o json)')
    .option('--no-color', 'no colour (also: NO_COLOR=1, or stdout not a terminal)')
    .option('--debug', 'show stack traces of internal errors');
}

/**
 * Print a result in the chosen format and set the exit code from its findings.
 * Human output goes to stdout unless the command says otherwise (serve: stderr).
 */
export async function emit<R extends { findings: readonly { severity: Finding['severity'] }[] }>(
  result: R,
  opts: CommonOptions,
  human: (style: import('../render/style.js').Style, r: R) => string,
  humanStream: NodeJS.WriteStream = process.stdout,
  prom?: (r: R) => string,
): Promise<void> {
  const { exitCodeFor } = await import('../findings.js');
  if (format(opts) === 'json') {
    await (await import('../render/json.js')).writeJson(process.stdout, result);
  } else if (format(opts) === 'line') {
    const why = (result as { couldNotRun?: unknown }).couldNotRun;
    process.stdout.write(`${typeof why === 'string' ? `UNKNOWN: ${why}` : oneLine(result.findings)}\n`);
  } else if (format(opts) === 'prom') {
    // Unreachable from the command line: -o's choices hold prom only for the commands that pass a renderer.
    if (prom === undefined) throw new Error('no Prometheus rendering for this command');
    process.stdout.write(prom(result));
  } else {
    const { makeStyle, colorWanted } = await import('../render/style.js');
    humanStream.write(terminalSafe(human(makeStyle(colorWanted(opts.color, humanStream)), result)));
  }
  process.exitCode = exitCodeFor(result.findings);
}

/**
 * The worst finding in one line (node-problem-detector shows a custom plugin's
 * stdout as the condition's message), or OK.
 */
function oneLine(findings: readonly { severity: Finding['severity']; code?: string; message?: string }[]): string {
  const worst = [...findings].filter((f) => f.severity !== 'info').sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity])[0];
  if (worst === undefined) return 'OK: no problems found';
  const more = findings.filter((f) => f.severity !== 'info').length - 1;
  return `${worst.code ?? 'PROBLEM'}: ${worst.message ?? ''}${more > 0 ? ` (+${more} more)` : ''}`;
}

/** Warnings: with JSON or Prometheus output on stderr (stdout is the document); human output prints them with the report. */
export function warn(lines: readonly string[], opts: CommonOptions): void {
  if (format(opts) === 'human') return;
  for (const w of lines) process.stderr.write(terminalSafe(`warning: ${w}\n`));
}


/** A repeatable option's values, in order. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** A whole number from min to max, or a usage error naming the flag. */
export const intIn = (name: string, min: number, max: number): Bounded<number> =>
  bounded((v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  }, true, min, max);

/** A repeatable bounded option: every value parsed, all kept, the bounds still known. */
export const repeatedIn = (one: Bounded<number>): Bounded<number[]> =>
  bounded((v: string, prev: number[] = []) => [...prev, one(v)], one.bounds.whole, one.bounds.min, one.bounds.max);

/** Each option's bounds at the end of its help line, from the parser that enforces them. */
export function sayBounds(cmd: Command): void {
  for (const opt of cmd.options) {
    const parse = (opt as { parseArg?: Partial<Bounded<unknown>> }).parseArg;
    if (parse?.bounds !== undefined) opt.description = `${opt.description} (${boundsText(parse.bounds)})`;
  }
}

/** Streams whose reader went away: what is still written to them goes nowhere, quietly. */
const gone = new Set<NodeJS.WriteStream>();

/**
 * Output into a closed pipe (`k8sdiag svc | head -1`): the output ends there, quietly, as every Unix filter's does,
 * instead of an unhandled EPIPE; the run does not. It goes on to its end and its exit code is the run's verdict
 * (`dnsbench -s 1 | head -1` still benchmarks every query and exits 1 on the slow ones), never 0 for a closed reader.
 */
export function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    // Writes after the reader left fail too (ERR_STREAM_DESTROYED): part of the same closed pipe.
    if (err.code === 'EPIPE' || gone.has(stream)) {
      gone.add(stream);
      return;
    }
    // Any other error of the output itself (EIO on a closed terminal, ENOSPC on a full disk): one line where it can
    // still be written, exit 2, never a stack trace from inside the listener.
    try {
      if (stream !== process.stderr) process.stderr.write(`k8sdiag: cannot write the output: ${err.code ?? err.message}\n`);
    } catch {
      // stderr is gone too
    }
    process.exit(2);
  });
}
