/**
 * Docs are the program: every `$ ` command in README.md and docs/*.md is run exactly as printed (through bash, in a
 * scratch folder where `test/` is the repository's and `k8sdiag` is on PATH), with the exit code its `# exit N` says
 * (0 where none is said), and every line of its printed output that carries no number is in what it really prints. A
 * `$ ... &` line starts a server for the rest of its block. A block that needs the namespace lab says so in a comment
 * above it (`<!-- docs-check: lab FILE -->`), and FILE must run that very command. Every other k8sdiag command line
 * in a shell block is parsed by the CLI's own parser: its flags and values exist.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { BIN } from '../helpers/run.js';
import { allBlocks } from '../helpers/docs.js';
import type { Step } from '../helpers/docs.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

const ALL = allBlocks();
const RUN = ALL.filter((b) => b.steps.length > 0 && b.lab === undefined);

/** The printed lines a real run must contain: those with no number in them (those change run to run). */
function expectedLines(output: string[]): string[] {
  return output
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== '...' && !/\d/.test(l) && !/^[┌├└│]/.test(l))
    .flatMap((l) => l.split(/\s*\.\.\.\s*/))
    .filter((l) => l.length > 3);
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-docs-'));
  symlinkSync(join(root, 'test'), join(dir, 'test'));
  mkdirSync(join(dir, '.bin'));
  symlinkSync(BIN, join(dir, '.bin', 'k8sdiag'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const env = () => ({ PATH: `${join(dir, '.bin')}:${process.execPath.replace(/\/node$/, '')}:${process.env.PATH ?? '/usr/bin:/bin'}`, NO_COLOR: '1' });

async function startBackground(step: Step): Promise<ChildProcess> {
  const p = spawn('bash', ['-c', `exec ${step.cmd}`], { cwd: dir, env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${step.where}: no "listening" within 10 s: ${err}`)), 10_000);
    p.stderr!.on('data', (d) => {
      err += d;
      if (err.includes('listening')) { clearTimeout(timer); resolve(); }
    });
    p.on('exit', () => { clearTimeout(timer); reject(new Error(`${step.where}: exited: ${err}`)); });
  });
  return p;
}

describe('the commands the docs print', () => {
  it('are found: README shows its examples with $, and every block that is not run names the test that runs it', () => {
    expect(RUN.length).toBeGreaterThanOrEqual(8);
    for (const b of ALL.filter((x) => x.lab !== undefined)) {
      // The lab test reads the block from the document itself, and runs its command as printed.
      expect(readFileSync(join(root, b.lab!), 'utf8'), `${b.where}: ${b.lab} runs it`).toContain(b.where.split(':')[0]!);
    }
  });

  it.each(RUN.map((b) => [b.where, b] as const))('%s runs as printed', async (_where, b) => {
    const started: ChildProcess[] = [];
    try {
      for (const s of b.steps) {
        if (s.background) { started.push(await startBackground(s)); continue; }
        const r = await execa('bash', ['-c', s.cmd], { cwd: dir, env: env(), reject: false, timeout: 90_000, stdin: 'ignore', all: true });
        expect(r.exitCode, `${s.where}: ${s.cmd}\n${String(r.all).slice(-2000)}`).toBe(s.exit);
        const said = String(r.all).replace(/[ \t]+/g, ' ');
        for (const line of expectedLines(s.output)) expect(said, `${s.where}: printed "${line}"`).toContain(line.replace(/[ \t]+/g, ' '));
      }
    } finally {
      for (const p of started) p.kill('SIGTERM');
    }
  }, 180_000);
});

describe('the other k8sdiag commands in shell blocks', () => {
  /** A k8sdiag command as it would run: from `k8sdiag` to the end of its pipeline stage; usage lines ([OPTIONS]) left out. */
  const lines = ALL.filter((b) => b.lang === 'sh' || b.lang === 'bash' || b.lang === '').flatMap((b) =>
    b.lines
      .filter((l) => !l.startsWith('$ ') && !/\[|\.\.\.|import /.test(l))
      .flatMap((l) => [...l.matchAll(/(?:^\s*|[|;]\s*|&&\s*|--\s)k8sdiag ([a-z][^|;>&#]*)/g)].map((m) => ({ where: b.where, args: m[1]!.trim().split(/\s+/) }))),
  );

  it('parse: each command, flag and value is the CLI\'s own', async () => {
    const { buildProgram } = await import('../../src/cli.js');
    expect(lines.length).toBeGreaterThan(5);
    for (const { where, args } of lines) {
      const program = buildProgram();
      let ran = '';
      program.exitOverride();
      for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} }).action(() => { ran = c.name(); });
      await program.parseAsync(['node', 'k8sdiag', ...args]).catch((e: unknown) => { throw new Error(`${where}: k8sdiag ${args.join(' ')}: ${String(e)}`); });
      expect(ran, `${where}: k8sdiag ${args.join(' ')}`).toBe(args[0]);
    }
  });

  it('the lab files named exist', () => {
    for (const b of ALL.filter((x) => x.lab !== undefined)) expect(existsSync(join(root, b.lab!)), b.where).toBe(true);
  });
});
