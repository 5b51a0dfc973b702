// Write a classic pcap to stdout at a fixed packet rate: its header, then its records in a batch every 10 ms, for at
// most SECONDS (a live capture's pace, for `watch --pcap -`). On stderr at the end: the packets written, the seconds
// taken and the rate reached (below the asked rate when the reader could not keep up and the pipe filled).
//   node bench/pace-pcap.mjs FILE RATE SECONDS
import { readFileSync, writeSync } from 'node:fs';

const [file, rateArg, secondsArg] = process.argv.slice(2);
if (file === undefined || rateArg === undefined) {
  console.error('usage: node bench/pace-pcap.mjs FILE RATE [SECONDS]');
  process.exit(2);
}
const rate = Number(rateArg);
const seconds = Number(secondsArg ?? 5);
const bytes = readFileSync(file);
const records = [];
for (let p = 24; p + 16 <= bytes.length; ) {
  const len = bytes.readUInt32LE(p + 8);
  records.push([p, p + 16 + len]);
  p += 16 + len;
}
const total = Math.min(records.length, Math.round(rate * seconds));
writeSync(1, bytes.subarray(0, 24));
const t0 = performance.now();
let sent = 0;
const TICK_MS = 10;
while (sent < total) {
  const due = Math.min(total, Math.round(((performance.now() - t0) / 1000) * rate) + Math.round((rate * TICK_MS) / 1000));
  if (due > sent) {
    // One write per batch: the records are contiguous in the file.
    writeSync(1, bytes.subarray(records[sent][0], records[due - 1][1]));
    sent = due;
  }
  const wait = t0 + (sent / rate) * 1000 - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, TICK_MS)));
}
const s = (performance.now() - t0) / 1000;
process.stderr.write(`K8SDIAG_PACED ${sent} ${s.toFixed(3)} ${(sent / s).toFixed(0)}\n`);
