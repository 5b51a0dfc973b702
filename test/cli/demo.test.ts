/** The demo cleans up after itself when interrupted, as a user at a terminal interrupts it (Ctrl-C: the whole group). */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DEMO = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url));
const demoDirs = (): Set<string> => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('k8sdiag-demo-')));

describe('npm run demo', () => {
  it('Ctrl-C removes its temporary directory and stops its server', async () => {
    const before = demoDirs();
    const child = spawn(process.execPath, [DEMO], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // Wait for the benchmark to start: the directory exists by then.
    const dir = await new Promise<string>((resolve, reject) => {
      const t = setInterval(() => {
        const added = [...demoDirs()].filter((d) => !before.has(d));
        if (added.length > 0 && out.includes('raw benchmark')) {
          clearInterval(t);
          resolve(join(tmpdir(), added[0]!));
        }
      }, 50);
      child.on('exit', () => {
        clearInterval(t);
        reject(new Error(`the demo ended first: ${out}`));
      });
    });
    expect(existsSync(dir)).toBe(true);
    process.kill(-child.pid!, 'SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).not.toBe(0);
    expect(existsSync(dir)).toBe(false);
  }, 60_000);
});

describe('the demo, run whole', () => {
  it('says what each part shows, shows every summary, keeps the SLOW flood short, and exits 0', async () => {
    const { execa } = await import('execa');
    const r = await execa(process.execPath, [new URL('../../scripts/demo.mjs', import.meta.url).pathname], { reject: false, timeout: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = String(r.stdout);
    // Each command is preceded by what it shows, and followed by its exit code said as expected.
    expect(out.match(/^# .+\n\$ k8sdiag /gm)).toHaveLength(3);
    expect(out.match(/^\(exit 1: .+, as expected\)$/gm)).toHaveLength(3);
    // Both dnsbench summaries are there, after at most three SLOW lines each.
    expect(out.match(/^dnsbench (queries|lookups) -> /gm)).toHaveLength(2);
    expect(out.match(/^\d{4}-\S+ SLOW /gm)!.length).toBeLessThanOrEqual(6);
    expect(out).toMatch(/\.\.\. and \d+ more SLOW lines/);
    expect(out).toContain('The demo showed each cause it injected.');
  }, 150_000);
});
