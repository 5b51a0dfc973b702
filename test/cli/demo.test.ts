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
