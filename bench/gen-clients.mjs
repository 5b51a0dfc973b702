// A capture of `pairs` DNS query/answer pairs from `clients` distinct pod addresses (10.0.0.0/8, then IPv6 past 16M),
// each answered 5 microseconds after its query, one pair every 10 microseconds (in time order): what a busy node's DaemonSet sees, and what
// watch's memory must not grow with. Written straight as classic pcap (Ethernet), in chunks.
//   node bench/gen-clients.mjs FILE PAIRS CLIENTS
import { closeSync, openSync, writeSync } from 'node:fs';

const [file, pairsArg, clientsArg] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: node bench/gen-clients.mjs FILE PAIRS CLIENTS');
  process.exit(2);
}
const pairs = Number(pairsArg ?? 1_000_000);
const clients = Number(clientsArg ?? pairs);
const SERVER = [10, 96, 0, 10];

/** The DNS message of a query or answer for `name` (A), id `id`. */
function dns(id, name, answer) {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const q = Buffer.concat([...labels, Buffer.from([0, 0, 1, 0, 1])]);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(answer ? 0x8180 : 0x0100, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answer ? 1 : 0, 6);
  const rr = answer ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1]) : Buffer.alloc(0);
  return Buffer.concat([head, q, rr]);
}

function frame(src, sport, dst, dport, payload) {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(28 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  Buffer.from(src).copy(ip, 12);
  Buffer.from(dst).copy(ip, 16);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([eth, ip, udp, payload]);
}

function record(us, data) {
  const r = Buffer.alloc(16);
  r.writeUInt32LE(Math.floor(us / 1e6), 0);
  r.writeUInt32LE(us % 1e6, 4);
  r.writeUInt32LE(data.length, 8);
  r.writeUInt32LE(data.length, 12);
  return Buffer.concat([r, data]);
}

const fd = openSync(file, 'w');
const head = Buffer.alloc(24);
head.writeUInt32LE(0xa1b2c3d4, 0);
head.writeUInt16LE(2, 4);
head.writeUInt16LE(4, 6);
head.writeUInt32LE(65535, 16);
head.writeUInt32LE(1, 20);
writeSync(fd, head);
const t0 = 1_700_000_000_000_000;
let chunk = [];
for (let k = 0; k < pairs; k++) {
  const c = k % clients;
  const client = [10, (c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff];
  const port = 20000 + (k % 40000);
  const id = k & 0xffff;
  const name = `svc${k % 5000}.ns${k % 97}.svc.cluster.local`;
  const at = t0 + k * 10;
  chunk.push(record(at, frame(client, port, SERVER, 53, dns(id, name, false))));
  chunk.push(record(at + 5, frame(SERVER, 53, client, port, dns(id, name, true))));
  if (chunk.length >= 20_000) {
    writeSync(fd, Buffer.concat(chunk));
    chunk = [];
  }
}
if (chunk.length > 0) writeSync(fd, Buffer.concat(chunk));
closeSync(fd);
