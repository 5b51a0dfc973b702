#!/usr/bin/env node
// The floor: the least a Node client can do per DNS query, to tell Node's own
// cost from dnsbench's. No accounting, no timeouts, no histogram: a fixed
// query, the ID bumped, one reply -> one new query, `IN_FLIGHT` outstanding.
//
//   node bench/floor.mjs PORT SOCKETS SECONDS [public|handle]
//
// public: socket.send(buf, cb) and the 'message' event (Node's documented API);
// handle: Node's UDP handle with a reused request and onmessage, as
// src/engine/udp.ts does. Prints one JSON line: qps and CPU per query.
import dgram from 'node:dgram';

const [port, nsock, secs] = process.argv.slice(2, 5).map(Number);
const path = process.argv[5] ?? 'handle';
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 100);
// bench.test A, ID 0
const query = Buffer.from('0000010000010000000000000562656e636804746573740000010001', 'hex');

const socks = [];
for (let i = 0; i < nsock; i++) {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  await new Promise((r) => s.connect(port, '127.0.0.1', r));
  socks.push(s);
}
const bufs = Array.from({ length: IN_FLIGHT }, () => Buffer.from(query));
let answered = 0;
let id = 0;
let next = 0;
let slot = 0;

let send;
if (path === 'public') {
  const cb = (err) => {
    if (err) throw err;
  };
  send = (b, s) => socks[s].send(b, cb);
  for (const s of socks) s.on('message', () => onReply());
} else {
  const state = Object.getOwnPropertySymbols(socks[0]).find((x) => x.description === 'state symbol');
  const handles = socks.map((s) => s[state].handle);
  const { SendWrap } = process.binding('udp_wrap');
  const reqs = Array.from({ length: IN_FLIGHT }, () => {
    const r = new SendWrap();
    r.oncomplete = (status) => {
      if (status < 0) throw new Error(`send ${status}`);
    };
    r.list = [query];
    return r;
  });
  send = (b, s, k) => {
    const r = reqs[k];
    r.list[0] = b;
    if (handles[s].send(r, r.list, 1, true) < 0) throw new Error('send');
  };
  for (const h of handles) h.onmessage = (nread) => nread >= 0 && onReply();
}

function launch(k) {
  const b = bufs[k];
  id = (id + 1) & 0xffff;
  b[0] = id >> 8;
  b[1] = id & 255;
  send(b, next, k);
  next = next + 1 === nsock ? 0 : next + 1;
}
function onReply() {
  answered++;
  slot = slot + 1 === IN_FLIGHT ? 0 : slot + 1;
  launch(slot);
}

const t0 = performance.now();
const c0 = process.cpuUsage();
for (let k = 0; k < IN_FLIGHT; k++) launch(k);
setTimeout(() => {
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ path, sockets: nsock, qps: Math.round(answered / s), cpuUs: Number(((c.user + c.system) / answered).toFixed(2)) }));
  process.exit(0);
}, secs * 1000);
