/** The fenced blocks of README.md and docs/*.md and the `$ ` commands in them, as the docs print them. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const DOC_FILES = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

export interface Step { cmd: string; background: boolean; exit: number; output: string[]; where: string }
/** lab: the test file that runs the block in the namespace lab, where a comment above the block names one. */
export interface Block { where: string; lab: string | undefined; steps: Step[]; lang: string; lines: string[] }

export function blocks(file: string): Block[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const out: Block[] = [];
  let cur: Block | undefined;
  lines.forEach((l, i) => {
    if (l.startsWith('```')) {
      if (cur) { out.push(cur); cur = undefined; return; }
      const above = lines.slice(Math.max(0, i - 2), i).join('\n');
      cur = { where: `${file}:${i + 1}`, lab: /<!-- docs-check: lab (\S+) -->/.exec(above)?.[1], steps: [], lang: l.slice(3).trim(), lines: [] };
      return;
    }
    if (!cur) return;
    cur.lines.push(l);
    const m = /^\$ (.*?)\s*(?:# exit (\d+))?$/.exec(l);
    if (m) {
      const background = /\s&$/.test(m[1]!);
      cur.steps.push({ cmd: m[1]!.replace(/\s*&$/, ''), background, exit: Number(m[2] ?? 0), output: [], where: `${file}:${i + 1}` });
    } else if (cur.steps.length > 0) cur.steps.at(-1)!.output.push(l);
  });
  return out;
}

/** Every block of every document. */
export const allBlocks = (): Block[] => DOC_FILES.flatMap(blocks);
