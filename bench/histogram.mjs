// Histogram.record speed: the bucket index from Math.clz32 (what stats/layout.ts uses) against the same
// histogram with a Math.log2 index, measured in one run.
import { performance } from 'node:perf_hooks';
import { Histogram } from '../dist/stats/index.js';

const N = 5_000_000;
const values = new Float64Array(N);
let seed = 1;
for (let i = 0; i < N; i++) {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  values[i] = 200 + (seed % 20_000); // 0.2-20 ms in microseconds
}

/** The index before: floor(log2) in floating point, corrected at exact powers. */
function log2Index(value) {
  if (value < 256) return value;
  let msb = Math.floor(Math.log2(value));
  if (2 ** msb > value) msb -= 1;
  else if (2 ** (msb + 1) <= value) msb += 1;
  const shift = msb - 7;
  const top = Math.floor(value / 2 ** shift);
  return 256 + (shift - 1) * 128 + (top - 128);
}

/** The index now (src/stats/histogram.ts), for latencies below 2^32 microseconds. */
function clz32Index(value) {
  if (value < 256) return value;
  const msb = 31 - Math.clz32(value);
  const top = (value >>> (msb - 7)) | 0;
  return 256 + (msb - 8) * 128 + (top - 128);
}

function time(fn) {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

const rounds = [];
for (let r = 0; r < 5; r++) {
  const h = new Histogram('us');
  const now = time(() => {
    for (let i = 0; i < N; i++) h.record(values[i]);
  });
  const counts = new Float64Array(256 + 40 * 128);
  const before = time(() => {
    for (let i = 0; i < N; i++) counts[log2Index(Math.round(values[i]))] += 1;
  });
  const after = time(() => {
    for (let i = 0; i < N; i++) counts[clz32Index(Math.round(values[i]))] += 1;
  });
  for (let i = 0; i < 2000; i++) if (log2Index(Math.round(values[i])) !== clz32Index(Math.round(values[i]))) throw new Error('the two indexes disagree');
  rounds.push({ now, before, after });
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const nsNow = (med(rounds.map((r) => r.now)) * 1e6) / N;
const nsBefore = (med(rounds.map((r) => r.before)) * 1e6) / N;
const nsAfter = (med(rounds.map((r) => r.after)) * 1e6) / N;
console.log(`   bucket index + count: Math.log2 (before) ${nsBefore.toFixed(1)} ns, Math.clz32 (now) ${nsAfter.toFixed(1)} ns per value: ratio ${(nsAfter / nsBefore).toFixed(2)}x`);
console.log(`   Histogram.record as a whole (index, counts, marks, min/max/sum): ${nsNow.toFixed(1)} ns per value`);
