/** The engine's options for a test against a server on loopback: 10 in flight, 200 queries, a 400 ms timeout. */
import type { EngineOptions } from '../../src/engine/engine.js';

export function engineOptions(port: number, o: Partial<EngineOptions> = {}): EngineOptions {
  return {
    server: '127.0.0.1',
    port,
    queries: [{ name: 'google.com', type: 'A' }],
    concurrency: 10,
    total: 200,
    timeoutMs: 400,
    slowMs: 5000,
    ...o,
  };
}
