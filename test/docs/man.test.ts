/** The man page: generated from the commander definitions, committed as generated, and complete. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';

const root = new URL('../../', import.meta.url);

describe('man/k8sdiag.1', () => {
  it('is what scripts/man.mjs makes from the CLI as built, and npm installs it', async () => {
    const script = new URL('scripts/man.mjs', root).href;
    const { manPage } = (await import(script)) as { manPage: () => string };
    expect(readFileSync(new URL('man/k8sdiag.1', root), 'utf8')).toBe(manPage());
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { man?: string[]; files?: string[] };
    expect(pkg.man).toEqual(['./man/k8sdiag.1']);
    expect(pkg.files).toContain('man');
  });

  it('has every command and every flag its help lists', async () => {
    const page = readFileSync(new URL('man/k8sdiag.1', root), 'utf8').replace(/\\-/g, '-');
    for (const cmd of ['dnsbench', 'serve', 'resolv', 'conntrack', 'svc', 'doctor', 'merge']) {
      expect(page).toContain(`.SS "${cmd}"`);
      const help = (await run(['help', cmd])).stdout;
      const options = help.slice(help.indexOf('Options:'), help.search(/\n(Examples|Exit codes|Without)/));
      for (const m of options.matchAll(/(?:^|\s)(--[a-z][a-z-]+)/g)) if (m[1] !== '--help') expect(page, `${cmd} ${m[1]}`).toContain(m[1]);
    }
  });

  it('has the options every command takes (--version among them), and troff formats it without a warning', async () => {
    const page = readFileSync(new URL('man/k8sdiag.1', root), 'utf8');
    expect(page).toMatch(/^\.SH OPTIONS\n/m);
    for (const f of ['\\-V, \\-\\-version', '\\-\\-debug', '\\-\\-no\\-color']) expect(page).toContain(`.B ${f}\n`);
    const { execa } = await import('execa');
    const groff = await execa('groff', ['-man', '-Tutf8', '-ww', '-z', new URL('man/k8sdiag.1', root).pathname], { reject: false });
    if (groff.exitCode === undefined || /ENOENT/.test(String(groff.stderr)) || (groff as { code?: string }).code === 'ENOENT') {
      if (process.env.CI) throw new Error('groff is missing');
      return;
    }
    expect(String(groff.stderr)).toBe('');
  });
});

