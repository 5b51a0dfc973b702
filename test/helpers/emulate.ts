/** Run the resolver emulation for one lookup (by default) and check its accounting adds up. */
import { expect } from 'vitest';
import { runResolverEmulation } from '../../src/engine/resolver.js';
import type { ResolverEmulationOptions } from '../../src/engine/resolver.js';
import { parseResolvConf } from '../../src/resolv/parse.js';

export async function emulateAt(servers: Array<{ host: string; port: number }>, conf: string, libc: 'glibc' | 'musl', o: Partial<ResolverEmulationOptions> = {}) {
  const res = await runResolverEmulation({
    conf: parseResolvConf(conf, { libc }),
    nameservers: servers,
    names: ['google.com'],
    concurrency: 1,
    total: 1,
    slowMs: 5000,
    ...o,
  });
  const e = res.engine;
  const errors = Object.values(e.errors).reduce((a, b) => a + b, 0);
  expect(e.sent, 'sent = answered + timeouts + errors + cancelled').toBe(e.answered + e.timeouts + errors + res.lookups.cancelled);
  return res;
}
