/**
 * IPVS mode (ipvsadm -Ln): what share of new connections each real server gets depends on the scheduler: rr splits
 * evenly among the servers of weight > 0, wrr and the hashing schedulers by weight, the least-connection ones by the
 * servers' load at the time (not predictable from the rules). Weight 0 is draining under every scheduler.
 */
import type { Finding } from '../../findings.js';
import type { IpvsService } from '../dump.js';
import type { EndpointShare, ServiceReport } from '../model.js';
import { NO_ENDPOINTS } from '../../remedies.js';
import { finding } from '../../findings.js';

/** What a share means under a scheduler (ip_vs_*.c), and whether the rules alone predict it. */
export function ipvsShareBasis(scheduler: string): { known: boolean; basis: string; split: 'equal' | 'weight' } {
  switch (scheduler) {
    case 'rr':
      return { known: true, basis: 'rr: an even split among the real servers of weight > 0 (rr ignores other weights)', split: 'equal' };
    case 'wrr':
      return { known: true, basis: 'wrr: weight / sum of weights', split: 'weight' };
    case 'sh':
    case 'dh':
    case 'mh':
      return { known: true, basis: `${scheduler}: weight / sum of weights over many ${scheduler === 'dh' ? 'destinations' : 'clients'}; one ${scheduler === 'dh' ? 'destination' : 'client'} always reaches the same server`, split: 'weight' };
    default:
      return { known: false, basis: `${scheduler}: depends on each server's active connections at the time; shown: weight / sum of weights, not a prediction`, split: 'weight' };
  }
}

export function ipvsAnalyse(services: IpvsService[], findings: Finding[]): ServiceReport[] {
  const out: ServiceReport[] = [];
  for (const s of services) {
    const total = s.reals.reduce((n, r) => n + r.weight, 0);
    const basis = ipvsShareBasis(s.scheduler);
    const active = s.reals.filter((r) => r.weight > 0).length;
    const endpoints: EndpointShare[] = s.reals.map((r) => ({
      address: r.address.includes(':') ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`,
      share: total <= 0 || r.weight <= 0 ? 0 : basis.split === 'equal' ? 1 / active : r.weight / total,
      probability: null,
      chain: null,
      weight: r.weight,
    }));
    const id = `${s.proto.toUpperCase()} ${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}`;
    if (s.reals.length === 0 || total === 0) {
      findings.push(finding({
        code: 'NO_ENDPOINTS',
        severity: 'warning',
        message: `${id} has ${s.reals.length === 0 ? 'no real servers' : 'only real servers of weight 0 (all draining)'}: new connections have nowhere to go`,
        subject: { kind: 'service', id: id },
        evidence: { service: id, reals: s.reals.length, line: s.line },
        remedy: NO_ENDPOINTS,
      }));
    }
    const draining = s.reals.filter((r) => r.weight === 0);
    if (draining.length > 0 && total > 0) {
      findings.push(finding({
        code: 'TERMINATING_ENDPOINTS',
        severity: 'info',
        message: `${id}: ${draining.length} real server${draining.length === 1 ? '' : 's'} with weight 0 (terminating endpoints being drained: no new connections, ${draining.reduce((n, r) => n + r.active, 0)} active kept)`,
        subject: { kind: 'service', id: id },
        evidence: { service: id, draining: draining.map((r) => `${r.address}:${r.port}`).join(' ') },
        remedy: '',
      }));
    }
    out.push({
      id,
      namespace: null,
      name: null,
      portName: null,
      protocol: s.proto,
      mode: 'ipvs',
      clusterIP: s.address,
      port: s.port,
      entries: [{ kind: 'virtualServer', address: s.address, port: s.port }],
      endpoints,
      externalEndpoints: null,
      cluster: { chain: `${s.scheduler}`, policy: 'Cluster', endpoints, fallthrough: total > 0 ? 0 : 1, dropped: 0, shares: { known: basis.known, basis: basis.basis } },
      external: null,
      sessionAffinitySeconds: s.persistentSeconds ?? null,
    });
  }
  return out;
}

