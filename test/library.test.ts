/**
 * The built package imported the way a library user would (`import ... from
 * 'k8sdiag'`, resolved through package.json's exports): every command's run
 * function works without the CLI and prints nothing.
 */
import { describe, expect, it } from 'vitest';
import { readFixture } from './helpers/run.js';

describe('k8sdiag as a library', () => {
  it('exports every command, and each returns its typed result with the header', async () => {
    // By the package's name, resolved through package.json's exports to dist/ (built by npm test), as a user would.
    const pkg = 'k8sdiag';
    const lib = (await import(pkg)) as typeof import('../src/index.js');
    for (const fn of ['runDnsbench', 'runConntrack', 'runResolv', 'runSvc', 'runServe', 'runEngine', 'runResolverEmulation', 'Responder'] as const) {
      expect(typeof lib[fn], fn).toBe('function');
    }
    const write = process.stdout.write;
    let printed = '';
    process.stdout.write = ((chunk: string) => {
      printed += chunk;
      return true;
    }) as typeof process.stdout.write;
    try {
      const resolv = await lib.runResolv({ source: { kind: 'text', text: 'nameserver 10.96.0.10\nsearch a.svc.cluster.local\noptions ndots:5\n', origin: 'doctor' }, libc: 'glibc', name: 'google.com' });
      expect(resolv).toMatchObject({ schema: 'k8sdiag.resolv/1', tool: lib.VERSION, command: 'resolv', file: 'doctor' });
      expect(resolv.candidates.map((c) => c.fqdn)).toEqual(['google.com.a.svc.cluster.local.', 'google.com.']);
      const ct = await lib.runConntrack({ source: { kind: 'text', text: readFixture('conntrack/conntrack-S-old-searched-weave3287.txt'), origin: 'x' } });
      expect(ct.schema).toBe('k8sdiag.conntrack/1');
      expect(ct.counters.insert_failed).toBe(199);
      const svc = await lib.runSvc({ source: { kind: 'text', text: readFixture('svc/iptables-save-overall.txt'), origin: 'x' } });
      expect(svc.schema).toBe('k8sdiag.svc/1');
      const r = new lib.Responder({ port: 0 });
      const { udpPort } = await r.start();
      try {
        const bench = await lib.runDnsbench({ server: '127.0.0.1', port: udpPort, queries: [{ name: 'a.test', type: 'A' }], concurrency: 2, total: 10, timeoutMs: 1000, slowMs: 5000, tcpRetry: false });
        expect(bench).toMatchObject({ schema: 'k8sdiag.dnsbench/1', answered: 10 });
        expect(Date.parse(bench.startedAt)).toBeGreaterThan(0);
      } finally {
        await r.stop();
      }
    } finally {
      process.stdout.write = write;
    }
    expect(printed).toBe('');
  });
});
