/** Embedded responders for a test file: started on an ephemeral loopback port, stopped after each test. */
import { afterEach } from 'vitest';
import { Responder } from '../../src/dns/responder.js';
import type { ResponderOptions } from '../../src/dns/responder.js';

const running = new Set<Responder>();

afterEach(async () => {
  for (const r of running) await r.stop();
  running.clear();
});

/** A responder that records what it saw (`record: true` unless told otherwise). */
export async function startResponder(opts: ResponderOptions = {}): Promise<Responder> {
  const r = new Responder({ record: true, ...opts });
  await r.start();
  running.add(r);
  return r;
}

/** Stop one now (e.g. to get a closed port). */
export async function stopResponder(r: Responder): Promise<void> {
  running.delete(r);
  await r.stop();
}
