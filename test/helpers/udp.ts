/** A tiny UDP DNS client for tests: send one query, get the decoded reply or undefined. */
import dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';

/** What the tests read from a reply (dns-packet's types leave out rcode). */
export interface Reply {
  id: number;
  rcode: string;
  flag_tc: boolean;
  questions: dnsPacket.Question[];
  answers: Array<{ name: string; type: string; ttl?: number; data?: unknown }>;
}

export function toReply(buf: Buffer): Reply {
  const d = dnsPacket.decode(buf) as dnsPacket.DecodedPacket & { rcode?: string };
  return {
    id: d.id ?? 0,
    rcode: d.rcode ?? '',
    flag_tc: d.flag_tc,
    questions: d.questions ?? [],
    answers: (d.answers ?? []).map((a) => ({ name: a.name, type: a.type, ...('ttl' in a ? { ttl: a.ttl } : {}), ...('data' in a ? { data: a.data } : {}) })),
  };
}

export async function ask(port: number, name: string, type: dnsPacket.RecordType = 'A', opts: { host?: string; timeoutMs?: number; raw?: Buffer; id?: number } = {}): Promise<Reply | undefined> {
  const host = opts.host ?? '127.0.0.1';
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const msg = opts.raw ?? dnsPacket.encode({ type: 'query', id: opts.id ?? 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }] });
  try {
    return await new Promise((resolve) => {
      const t = setTimeout(() => resolve(undefined), opts.timeoutMs ?? 1000);
      sock.on('message', (m) => {
        clearTimeout(t);
        resolve(toReply(m));
      });
      sock.send(msg, port, host);
    });
  } finally {
    sock.close();
  }
}
