/** IPVS shares by scheduler: rr splits evenly whatever the weights, wrr by weight, lc is not predictable from the rules. */
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';

const DUMP = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.96.0.10:53 rr
  -> 10.244.1.2:53                Masq    1      0          0
  -> 10.244.2.3:53                Masq    3      0          0
  -> 10.244.3.4:53                Masq    0      0          0
UDP  10.96.0.11:53 wrr
  -> 10.244.1.2:53                Masq    1      0          0
  -> 10.244.2.3:53                Masq    3      0          0
UDP  10.96.0.12:53 lc
  -> 10.244.1.2:53                Masq    1      0          0
  -> 10.244.2.3:53                Masq    3      0          0
`;

type Svc = { clusterIP: string; endpoints: Array<{ address: string; share: number }>; cluster: { shares: { known: boolean; basis: string } } };

describe('svc: IPVS shares per scheduler', () => {
  it('rr: an even split among weight > 0 (1 and 3 get half each, weight 0 none); wrr: 1/4 and 3/4; lc: unknown', async () => {
    const r = await run(['svc', '--json'], { input: DUMP });
    const doc = JSON.parse(r.stdout) as { services: Svc[] };
    const by = (ip: string) => doc.services.find((s) => s.clusterIP === ip)!;
    expect(by('10.96.0.10').endpoints.map((e) => e.share)).toEqual([0.5, 0.5, 0]);
    expect(by('10.96.0.10').cluster.shares).toMatchObject({ known: true });
    expect(by('10.96.0.11').endpoints.map((e) => e.share)).toEqual([0.25, 0.75]);
    expect(by('10.96.0.12').cluster.shares).toMatchObject({ known: false, basis: expect.stringMatching(/^lc: depends on each server's active connections/) });
    const prom = await run(['svc', '-o', 'prom'], { input: DUMP });
    const shares = prom.stdout.split('\n').filter((l) => l.startsWith('k8sdiag_svc_endpoint_share_ratio'));
    expect(shares.some((l) => l.includes('10.96.0.12'))).toBe(false);
    expect(shares.filter((l) => l.includes('10.96.0.11'))).toHaveLength(2);
    const human = await run(['svc', '--no-color'], { input: DUMP });
    expect(human.stdout).toMatch(/scheduler lc: depends on each server's active connections/);
    expect(human.stdout).toMatch(/10\.244\.2\.3:53 +weight 3/);
  });
});
