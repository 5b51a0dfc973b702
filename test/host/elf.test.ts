/**
 * The loader an executable names, read from real programs built here by gcc and musl-gcc (their loader paths are the
 * ones glibc's and musl's documentation give), and from cut and corrupted headers, which must never throw.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { elfInterpreter } from '../../src/host/elf.js';
import { mulberry32 } from '../../src/stats/index.js';
import { TOOLS, gate, titled } from '../helpers/tools.js';

const x86 = process.arch === 'x64';
// Built for x86-64 only; elsewhere skipped.
const compilers = x86 ? await gate({}, TOOLS.gcc, TOOLS.muslGcc) : { ok: false, why: 'skipped: x86-64 only' };
const haveGcc = compilers.ok;
const haveMusl = compilers.ok;

// Made by a hook its cleanup is paired with: a file whose every test skips makes none and leaves none behind.
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-elf-'));
});
afterAll(() => (dir === '' ? undefined : rmSync(dir, { recursive: true, force: true })));
async function build(compiler: string, name: string, flags: string[] = []): Promise<Buffer> {
  const src = join(dir, 'main.c');
  writeFileSync(src, 'int main(void) { return 0; }\n');
  await execa(compiler, [...flags, '-o', join(dir, name), src]);
  return readFileSync(join(dir, name));
}

describe.skipIf(!haveGcc || !haveMusl)(titled('the loader a program asks for', compilers), () => {
  it('glibc and musl programs name their loaders; a static one names none', async () => {
    expect(elfInterpreter(await build('gcc', 'glibc'))).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(elfInterpreter(await build('musl-gcc', 'musl'))).toBe('/lib/ld-musl-x86_64.so.1');
    expect(elfInterpreter(await build('musl-gcc', 'static', ['-static']))).toBeNull();
  });

  it('a header cut anywhere, or its fields overwritten with random bytes, gives undefined or a string, never a throw', async () => {
    const bin = await build('gcc', 'cut');
    const full = elfInterpreter(bin);
    for (let n = 0; n < 4096; n++) {
      const got = elfInterpreter(bin.subarray(0, n));
      expect(got === undefined || got === full).toBe(true);
    }
    const rand = mulberry32(5);
    for (let k = 0; k < 2000; k++) {
      const b = Buffer.from(bin.subarray(0, 4096));
      for (let j = 0; j < 8; j++) b[4 + Math.floor(rand() * 124)] = Math.floor(rand() * 256);
      const got = elfInterpreter(b);
      expect(got === undefined || got === null || typeof got === 'string').toBe(true);
    }
    const huge = Buffer.from(bin.subarray(0, 4096));
    huge.writeBigUInt64LE(0xffff_ffffn, 0x20); // program headers 4 GiB in
    expect(elfInterpreter(huge)).toBeUndefined();
    expect(elfInterpreter(Buffer.from('#!/bin/sh\necho hi\n'))).toBeUndefined();
  });
});
