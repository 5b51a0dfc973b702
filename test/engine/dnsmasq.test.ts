/** Against dnsmasq, a real DNS server from Debian, on loopback. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { hasDnsmasq, startDnsmasq } from '../helpers/dnsmasq.js';
import type { Dnsmasq } from '../helpers/dnsmasq.js';
import { TOOLS, gate, titled } from '../helpers/tools.js';

const server = await gate({}, TOOLS.dnsmasq);
const available = server.ok && (await hasDnsmasq());

describe.skipIf(!available)(titled('dnsbench against dnsmasq', server), () => {
  let d: Dnsmasq;
  beforeAll(async () => {
    d = await startDnsmasq();
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('answers every query, exact accounting', async () => {
    const r = await run(['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(d.port), '-c', '50', '-n', '3000', '-d', 'bench.test']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ sent: 3000, answered: 3000, timeouts: 0, rcodes: { NOERROR: 3000 } });
  });

  it('counts NXDOMAIN by rcode', async () => {
    const r = await run(['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(d.port), '-c', '10', '-n', '100', '-d', 'nope.svc.cluster.local', '-d', 'google.com']);
    expect(JSON.parse(r.stdout).rcodes).toEqual({ NXDOMAIN: 50, NOERROR: 50 });
  });

  it('glibc lookups through the search list: 4 names x A+AAAA, 6 NXDOMAIN then the answer', async () => {
    const r = await run(['dnsbench', '--json', '--resolv', '-', '--server', '127.0.0.1', '-p', String(d.port), '-c', '4', '-n', '20', '-d', 'google.com'], {
      input: 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5\n',
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.sent).toBe(160);
    expect(doc.rcodes).toEqual({ NXDOMAIN: 120, NOERROR: 40 });
    expect(doc.resolver.outcomes).toEqual({ answer: 20 });
  });
});
