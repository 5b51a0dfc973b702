/** Reading local drops from /proc: captured lines of this machine's /proc/net/{udp,snmp,snmp6} (Linux 6.x). */
import { describe, expect, it } from 'vitest';
import { parseSocketDrops, parseUdpSnmp, snmpDelta } from '../../src/host/drops.js';
import { parseServer } from '../../src/commands/dnsbench.js';

const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 7203: 0100007F:822D 0100007F:EDA1 01 00000000:00000000 00:00000000 00000000     0        0 24804 2 000000008347b755 291
 7204: 0100007F:822E 0100007F:EDA1 01 00000000:00000000 00:00000000 00000000     0        0 24805 2 000000008347b756 9
 7205: 0100007F:822F 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 24806 2 000000008347b757 1000
`;
const SNMP = `Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 13504 30 44 13546 44 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
`;
const SNMP6 = `Udp6InDatagrams                 	502
Udp6InErrors                    	3
Udp6RcvbufErrors                	2
`;

describe('local drops from /proc', () => {
  it("sums the drops column of the benchmark's own sockets (by local and remote port)", () => {
    expect(parseSocketDrops(UDP, new Set([0x822d, 0x822e]), 0xeda1)).toBe(300);
    expect(parseSocketDrops(UDP, new Set([0x822d]), 53)).toBe(0);
    expect(parseSocketDrops(UDP, new Set([0x822f]), 53)).toBe(1000);
  });

  it('reads RcvbufErrors and InErrors of UDP and UDP6, and their rise', () => {
    expect(parseUdpSnmp(SNMP, SNMP6)).toEqual({ rcvbufErrors: 46, inErrors: 47 });
    expect(parseUdpSnmp(undefined, undefined)).toBeNull();
    expect(snmpDelta({ rcvbufErrors: 10, inErrors: 12 }, { rcvbufErrors: 46, inErrors: 47 })).toEqual({ rcvbufErrors: 36, inErrors: 35 });
    expect(snmpDelta(null, { rcvbufErrors: 1, inErrors: 1 })).toBeNull();
  });
});

describe('--server forms', () => {
  it('accepts an address, [v6], [v6]:port and v4:port, keeps a zone', () => {
    expect(parseServer('10.96.0.10')).toEqual({ host: '10.96.0.10' });
    expect(parseServer('[::1]')).toEqual({ host: '::1' });
    expect(parseServer('[::1]:5353')).toEqual({ host: '::1', port: 5353 });
    expect(parseServer('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(parseServer('fe80::1%eth0')).toEqual({ host: 'fe80::1%eth0' });
    expect(() => parseServer('[::1]:70000')).toThrow(/port must be from 1 to 65535/);
  });
});
