#!/usr/bin/env node
// The floor of resolver mode: the least a Node program can do to make the
// datagrams one glibc lookup makes, to tell Node's own cost from the
// emulation's. Per lookup, for each of CANDIDATES names: a new UDP socket
// (Node's UDP handle: bind, connect, getsockname), the A and AAAA queries,
// both replies, close. No parsing, no accounting, no timeouts.
//
//   node bench/floor-resolver.mjs SERVER_IP PORT LOOKUPS_IN_FLIGHT SECONDS [CANDIDATES=4]
//
// Prints one JSON line: lookups per second and CPU per lookup (process.cpuUsage).
const [host, portText, inFlightText, secondsText, candidatesText] = process.argv.slice(2);
const port = Number(portText);
const inFlight = Number(inFlightText);
const seconds = Number(secondsText);
const candidates = Number(candidatesText ?? 4);
const { UDP, SendWrap } = process.binding('udp_wrap');
// bench.test A and AAAA; the server's answer does not matter here.
const queries = ['0000010000010000000000000562656e636804746573740000010001', '0000010000010000000000000562656e6368047465737400001c0001'].map((h) => Buffer.from(h, 'hex'));

function candidate() {
  return new Promise((resolve, reject) => {
    const h = new UDP();
    if (h.bind('0.0.0.0', 0, 0) < 0 || h.connect(host, port) < 0 || h.getsockname({}) < 0) reject(new Error('socket'));
    let replies = 0;
    h.onmessage = (nread) => {
      if (nread < 0) return reject(new Error(`recv ${nread}`));
      if (++replies === 2) {
        h.close();
        resolve();
      }
    };
    h.recvStart();
    for (const q of queries) {
      const req = new SendWrap();
      req.list = [q];
      req.oncomplete = () => {};
      if (h.send(req, req.list, 1, true) < 0) reject(new Error('send'));
    }
  });
}

let lookups = 0;
const until = performance.now() + seconds * 1000;
const t0 = performance.now();
const c0 = process.cpuUsage();
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (performance.now() < until) {
      for (let k = 0; k < candidates; k++) await candidate();
      lookups++;
    }
  }),
);
const s = (performance.now() - t0) / 1000;
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ lookups, lookupsPerSecond: Math.round(lookups / s), cpuUs: Number(((c.user + c.system) / lookups).toFixed(1)), userUs: Number((c.user / lookups).toFixed(1)), sysUs: Number((c.system / lookups).toFixed(1)) }));
