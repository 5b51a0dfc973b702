/**
 * Colour and table helpers for human output. Colour is on only when stdout is
 * a TTY, NO_COLOR is unset and --no-color was not given (chalk 5 does not read
 * NO_COLOR itself).
 */
import { Chalk } from 'chalk';
import type { ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import type { Severity } from '../findings.js';

export interface Style {
  c: ChalkInstance;
  color: boolean;
}

export function colorWanted(flag: boolean | undefined, stream: NodeJS.WriteStream = process.stdout): boolean {
  if (flag === false) return false;
  const noColor = process.env.NO_COLOR;
  if (noColor !== undefined && noColor !== '') return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

export function makeStyle(color: boolean): Style {
  return { c: new Chalk({ level: color ? 1 : 0 }), color };
}

export function table(style: Style, head: string[], opts: { align?: Array<'left' | 'right' | 'center'> } = {}): Table.Table {
  return new Table({
    head: head.map((h) => style.c.bold(h)),
    style: { head: [], border: [], compact: true },
    ...(opts.align ? { colAligns: opts.align } : {}),
  });
}

export function severityLabel(style: Style, s: Severity): string {
  if (s === 'critical') return style.c.red.bold('CRITICAL');
  if (s === 'warning') return style.c.yellow.bold('WARNING');
  return style.c.cyan('INFO');
}

/** Thousands separators for counts: 1234567 -> 1,234,567. */
export function num(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}
