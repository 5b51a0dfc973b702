/**
 * Search-list edge cases checked against real glibc: in a network namespace,
 * `k8sdiag serve` on 127.0.0.1:53 answers NXDOMAIN for everything and logs each
 * query; getent (getaddrinfo) reads a resolv.conf that `ip netns exec` mounts
 * from /etc/netns/NAME/; the names it sent, in order, must be the names
 * `k8sdiag resolv` expands.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/run.js';
import { canUseNetns, createNetns, serveIn } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';

const usable = await canUseNetns();

describe.skipIf(!usable)('glibc search list, real getaddrinfo against the expansion', () => {
  let ns: Netns;
  let serveProc: ChildProcess | undefined;
  let etcDir = '';
  let logDir = '';
  let log = '';

  beforeAll(async () => {
    ns = await createNetns('search');
    etcDir = `/etc/netns/${ns.name}`;
    mkdirSync(etcDir, { recursive: true });
    logDir = mkdtempSync(join(tmpdir(), 'k8sdiag-search-'));
    log = join(logDir, 'queries.ndjson');
    serveProc = await serveIn(ns.name, ['--host', '127.0.0.1', '--port', '53', '--zone', 'nothing.invalid', '--log', log, '--duration', '120']);
  }, 30_000);

  afterAll(async () => {
    serveProc?.kill('SIGTERM');
    if (etcDir) rmSync(etcDir, { recursive: true, force: true });
    if (logDir) rmSync(logDir, { recursive: true, force: true });
    await ns?.remove();
  });

  const cases: Array<[string, string]> = [
    ['a search domain written with its trailing dot', 'search ns1.svc.cluster.local. cluster.local'],
    ['a root "." in the search list', 'search cluster.local . svc.example'],
    ['a search domain with a leading dot', 'search .ns1.svc.cluster.local cluster.local'],
    ['a search domain with an empty label', 'search cluster.local a..b svc.example'],
  ];
  for (const [label, search] of cases) {
    it(label, async () => {
      const conf = `nameserver 127.0.0.1\n${search}\noptions ndots:5 attempts:1 timeout:1\n`;
      writeFileSync(`${etcDir}/resolv.conf`, conf);
      writeFileSync(log, '');
      const g = await ns.exec('getent', ['ahosts', 'svc-a'], { timeout: 30_000 });
      expect(g.exitCode).not.toBe(0); // nothing exists: every name is NXDOMAIN
      await new Promise((r) => setTimeout(r, 100));
      const seen = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string; type: string });
      const realNames = [...new Set(seen.map((q) => q.name.toLowerCase().replace(/\.$/, '')))];
      const r = await ns.exec(process.execPath, [BIN, 'resolv', '--json', '--file', '-', 'svc-a'], { input: conf });
      const doc = JSON.parse(r.stdout) as { candidates: Array<{ fqdn: string; sent: boolean }> };
      const expanded = doc.candidates.filter((c) => c.sent).map((c) => c.fqdn.toLowerCase().replace(/\.$/, ''));
      expect(realNames.length).toBeGreaterThan(0);
      expect(realNames).toEqual(expanded);
    }, 30_000);
  }
  // Out-of-range numbers, read as glibc 2.36 reads them (atoi: strtol, then the low 32 bits; the unsigned fields).
  const ranges: Array<[string, string, 'names' | 'nothing']> = [
    ['ndots:-1 is 15 (a 4-bit field): the search name first', 'ndots:-1', 'names'],
    ['ndots:4294967297 is 1 (the low 32 bits): the name as written first', 'ndots:4294967297', 'names'],
    ['attempts:4294967296 is 0: no query at all', 'attempts:4294967296', 'nothing'],
    ['attempts:99999999999999999999 saturates, and its low 32 bits are -1: no query at all', 'attempts:99999999999999999999', 'nothing'],
  ];
  for (const [label, option, expect_] of ranges) {
    it(label, async () => {
      const conf = `nameserver 127.0.0.1\nsearch a.example\noptions timeout:1 attempts:1\noptions ${option}\n`;
      writeFileSync(`${etcDir}/resolv.conf`, conf);
      writeFileSync(log, '');
      const g = await ns.exec('getent', ['ahosts', 'x.y'], { timeout: 30_000 });
      expect(g.exitCode).not.toBe(0);
      await new Promise((r) => setTimeout(r, 100));
      const seen = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string });
      const realNames = [...new Set(seen.map((q) => q.name.toLowerCase().replace(/\.$/, '')))];
      const r = await ns.exec(process.execPath, [BIN, 'resolv', '--json', '--file', '-', 'x.y'], { input: conf });
      const doc = JSON.parse(r.stdout) as { candidates: Array<{ fqdn: string; sent: boolean }>; findings: Array<{ code: string }> };
      if (expect_ === 'nothing') {
        expect(realNames).toEqual([]);
        expect(doc.findings.map((f) => f.code)).toContain('LOOKUPS_DISABLED');
      } else {
        expect(realNames.length).toBeGreaterThan(0);
        expect(realNames).toEqual(doc.candidates.filter((c) => c.sent).map((c) => c.fqdn.toLowerCase().replace(/\.$/, '')));
      }
    }, 30_000);
  }
});
