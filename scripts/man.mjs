// man/k8sdiag.1, generated from the commander definitions of the built CLI (dist/cli.js): every command, its
// synopsis, description, options with their defaults and choices, and the examples of its help. npm installs it
// (package.json "man"); a test checks the committed page against a fresh one.
import { mkdirSync, writeFileSync } from 'node:fs';
import { buildProgram } from '../dist/cli.js';
import { VERSION } from '../dist/version.js';

/**
 * Text for roff: backslashes escaped, a leading dot or quote made literal, hyphens as minus signs in flags; after a
 * `|` a place troff may break a line (\:), so a long spec (KIND[:ARG][@every=N|...]) fills its lines without a warning.
 */
const esc = (s) => s.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/\|/g, '|\\:');
const flag = (s) => esc(s).replace(/-/g, '\\-');

/** The text a command's help prints after its options (examples, exit codes), captured from commander. */
function afterHelp(cmd) {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: () => {} });
  cmd.outputHelp();
  const at = out.search(/\n(Examples|Exit codes|Without)/);
  return at < 0 ? '' : out.slice(at + 1).trimEnd();
}

export function manPage() {
  const program = buildProgram();
  const lines = [
    `.TH K8SDIAG 1 "" "k8sdiag ${VERSION}" "User Commands"`,
    // Left-aligned, not justified: flag specs and addresses are long words that a justified line cannot stretch around.
    '.ad l',
    '.SH NAME',
    `k8sdiag \\- ${esc(program.description())}`,
    '.SH SYNOPSIS',
    '.B k8sdiag',
    '.I command',
    '[\\fIoptions\\fR]',
    '.SH DESCRIPTION',
    'k8sdiag finds out why DNS is slow or failing inside a Kubernetes cluster: the conntrack insert race, conntrack table',
    'pressure, search\\-path amplification, and servers or paths that lose queries. Every command prints a report (or',
    '\\fB\\-o json\\fR, \\fBprom\\fR, \\fBline\\fR) and sets the exit status from its findings.',
    '.SH OPTIONS',
    'Before the command, or after it:',
  ];
  for (const o of program.options) lines.push('.TP', `.B ${flag(o.flags)}`, esc(o.description));
  lines.push('.SH COMMANDS');
  for (const cmd of program.commands) {
    if (cmd.name() === 'help') continue;
    lines.push(`.SS "${cmd.name()}"`, `.B k8sdiag ${esc(cmd.name())}`, flag(cmd.usage()), '.PP', esc(cmd.description()), '.PP', 'Options:');
    for (const o of cmd.options) {
      const extra = [];
      if (o.argChoices) extra.push(`one of: ${o.argChoices.join(', ')}`);
      if (o.defaultValue !== undefined && typeof o.defaultValue !== 'boolean') extra.push(`default: ${JSON.stringify(o.defaultValue)}`);
      lines.push('.TP', `.B ${flag(o.flags)}`, esc(`${o.description}${extra.length ? ` (${extra.join('; ')})` : ''}`));
    }
    const after = afterHelp(cmd);
    if (after !== '') lines.push('.PP', '.nf', esc(after), '.fi');
  }
  lines.push(
    '.SH EXIT STATUS',
    '0 healthy; 1 problems found; 2 usage or input error (one line on stderr, and a hint line where there is one); 130 or',
    '143 when SIGINT or SIGTERM stopped',
    'a run, after its report of what it gathered.',
    '.SH ENVIRONMENT',
    '.TP',
    '.B NO_COLOR',
    'no colour in human output (as \\fB\\-\\-no\\-color\\fR).',
    '.TP',
    '.B NODE_NAME',
    'the host name in every JSON document\'s header (a DaemonSet sets it from the downward API).',
    '.SH SEE ALSO',
    '.BR conntrack (8),',
    '.BR iptables\\-save (8),',
    '.BR resolv.conf (5),',
    'and README.md and docs/ in the package.',
    '',
  );
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  mkdirSync('man', { recursive: true });
  writeFileSync('man/k8sdiag.1', manPage());
  console.log('wrote man/k8sdiag.1');
}
