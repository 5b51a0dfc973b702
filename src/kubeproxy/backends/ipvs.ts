/** IPVS mode (ipvsadm -Ln): each real server gets weight / sum of weights; weight 0 is draining. */
import type { Finding } from '../../findings.js';
import type { IpvsService } from '../rules.js';
import type { EndpointShare, ServiceReport } from '../model.js';

export function ipvsAnalyse(services: IpvsService[], findings: Finding[]): ServiceReport[] {
  const out: ServiceReport[] = [];
  for (const s of services) {
    const total = s.reals.reduce((n, r) => n + r.weight, 0);
    const endpoints: EndpointShare[] = s.reals.map((r) => ({
      address: r.address.includes(':') ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`,
      share: total > 0 ? r.weight / total : 0,
      probability: null,
      chain: null,
      weight: r.weight,
    }));
    const id = `${s.proto.toUpperCase()} ${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}`;
    if (s.reals.length === 0 || total === 0) {
      findings.push({
        code: 'NO_ENDPOINTS',
        severity: 'warning',
        message: `${id} has ${s.reals.length === 0 ? 'no real servers' : 'only real servers of weight 0 (all draining)'}: new connections have nowhere to go`,
        subject: { kind: 'service', id: id },
        evidence: { service: id, reals: s.reals.length, line: s.line },
        remedy: 'check the Service\'s endpoints (kubectl get endpointslices)',
      });
    }
    const draining = s.reals.filter((r) => r.weight === 0);
    if (draining.length > 0 && total > 0) {
      findings.push({
        code: 'TERMINATING_ENDPOINTS',
        severity: 'info',
        message: `${id}: ${draining.length} real server${draining.length === 1 ? '' : 's'} with weight 0 (terminating endpoints being drained: no new connections, ${draining.reduce((n, r) => n + r.active, 0)} active kept)`,
        subject: { kind: 'service', id: id },
        evidence: { service: id, draining: draining.map((r) => `${r.address}:${r.port}`).join(' ') },
        remedy: '',
      });
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
      cluster: { chain: `${s.scheduler}`, policy: 'Cluster', endpoints, fallthrough: total > 0 ? 0 : 1, dropped: 0 },
      external: null,
      sessionAffinitySeconds: s.persistentSeconds ?? null,
    });
  }
  return out;
}

