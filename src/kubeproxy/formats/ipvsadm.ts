/** `ipvsadm -Ln`: virtual services and their real servers with weights. */
import type { IpvsService } from '../dump.js';

const IPVS_SERVICE = /^(TCP|UDP|SCTP|FWM)\s+(\S+)\s+(\S+)(.*)$/;
const IPVS_REAL = /^->\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/;

function splitHostPort(hp: string): { address: string; port: number } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(hp);
  if (!m || m[1] === undefined || m[2] === undefined) return { address: hp, port: 0 };
  return { address: m[1], port: Number(m[2]) };
}

export class IpvsadmReader {
  /** Undefined until an ipvsadm line is seen. */
  services: IpvsService[] | undefined;

  /** Take the line if it is ipvsadm's; false otherwise. */
  line(line: string, lineNo: number): boolean {
    if (/^IP Virtual Server version/.test(line) || /^Prot LocalAddress:Port/.test(line) || /^-> RemoteAddress:Port/.test(line)) {
      this.services ??= [];
      return true;
    }
    const svc = IPVS_SERVICE.exec(line);
    if (svc && svc[2] !== undefined && svc[3] !== undefined && (this.services !== undefined || /:\d+$/.test(svc[2]))) {
      const { address, port } = splitHostPort(svc[2]);
      const s: IpvsService = { proto: (svc[1] ?? '').toLowerCase(), address, port, scheduler: svc[3], reals: [], line: lineNo };
      const pers = /persistent (\d+)/.exec(svc[4] ?? '');
      if (pers?.[1] !== undefined) s.persistentSeconds = Number(pers[1]);
      (this.services ??= []).push(s);
      return true;
    }
    const real = IPVS_REAL.exec(line);
    const last = this.services?.[this.services.length - 1];
    if (real && last !== undefined && real[1] !== undefined) {
      const { address, port } = splitHostPort(real[1]);
      last.reals.push({ address, port, forward: real[2] ?? '', weight: Number(real[3]), active: Number(real[4]), inactive: Number(real[5]) });
      return true;
    }
    return false;
  }
}
