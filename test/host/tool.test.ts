/** A live tool's output is read up to a cap, and past it the tool is said to have printed too much, never held whole. */
import { describe, expect, it } from 'vitest';
import { runTool } from '../../src/tool.js';

describe('runTool', () => {
  it('past maxBuffer: failed, with the cap said, and nothing of the output kept', async () => {
    const r = await runTool('sh', ['-c', 'yes | head -c 3000000'], { timeoutMs: 10_000, maxBuffer: 1 << 20 });
    expect(r.failed).toBe('sh printed more than 1 MiB, past the input cap');
    expect(r.stdout).toBe('');
    const ok = await runTool('sh', ['-c', 'printf hello'], { timeoutMs: 10_000, maxBuffer: 1 << 20 });
    expect(ok).toMatchObject({ stdout: 'hello', failed: undefined });
  });
});
