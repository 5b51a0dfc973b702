/**
 * Every client's counts, exact, in rows of 32-bit numbers: a busy node's capture names a million pod addresses, and an
 * object per client (a Map of rcodes, a histogram) cost a kilobyte or more each. A row is about 100 bytes; rows live in
 * blocks of 65,536, so the table grows without copying. A client's latency is its exact least, mean and most; the
 * first CLIENT_HISTOGRAMS clients seen also keep a histogram for their percentiles.
 */
import { Histogram, LATENCY_MARKS_US } from '../stats/index.js';
import type { GroupStats } from './groups.js';

export const COUNTS = ['queries', 'answered', 'unanswered', 'resends', 'answeredAfterResend', 'late', 'truncated', 'truncatedNoTcp', 'truncatedTcpFailed', 'tcp', 'tcpUnanswered', 'searchQueries', 'raceSignature', 'aaaa'] as const;
type Count = (typeof COUNTS)[number];

/** What a query's groups count as things happen to it: all of them, its client, its server, its endpoint. */
export type Tally = { [K in Count]: number } & {
  answer(rcode: string, waitedUs: number, resent: boolean, tc: boolean): void;
};

/** The rcodes kept in a row; any other is counted in a small map of its own. */
const RCODES = ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED'] as const;
const LAT_N = COUNTS.length + RCODES.length;
const LAT_LO = LAT_N + 1;
const LAT_HI = LAT_N + 2;
const STRIDE = LAT_N + 3;
const BLOCK = 1 << 16;
export const CLIENT_HISTOGRAMS = 1000;

/** An IPv4 address as a small integer (a Map keeps it without a string); any other address as itself. */
function keyOf(address: string): number | string {
  const p = address.split('.');
  if (p.length !== 4) return address;
  const n = ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) ^ 0x80000000;
  return Number.isInteger(n) ? n | 0 : address;
}

function addressOf(key: number | string): string {
  if (typeof key === 'string') return key;
  const n = (key ^ 0x80000000) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

export class ClientTable {
  private readonly index = new Map<number | string, number>();
  private readonly rows: Uint32Array[] = [];
  private readonly sums: Float64Array[] = [];
  private readonly otherRcodes = new Map<number, Map<string, number>>();
  private readonly hists = new Map<number, Histogram>();

  get size(): number {
    return this.index.size;
  }

  /** The client's tally, its row made on first sight. */
  tally(address: string): ClientTally {
    const key = keyOf(address);
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.index.size;
      if ((i & (BLOCK - 1)) === 0) {
        this.rows.push(new Uint32Array(BLOCK * STRIDE));
        this.sums.push(new Float64Array(BLOCK));
      }
      this.rows[i >>> 16]![(i & (BLOCK - 1)) * STRIDE + LAT_LO] = 0xffffffff;
      this.index.set(key, i);
      if (i < CLIENT_HISTOGRAMS) this.hists.set(i, new Histogram('us', LATENCY_MARKS_US));
    }
    return new ClientTally(this, i);
  }

  get(i: number, f: number): number {
    return this.rows[i >>> 16]![(i & (BLOCK - 1)) * STRIDE + f]!;
  }

  set(i: number, f: number, v: number): void {
    this.rows[i >>> 16]![(i & (BLOCK - 1)) * STRIDE + f] = v;
  }

  answer(i: number, rcode: string, waitedUs: number, resent: boolean, tc: boolean): void {
    this.set(i, F.answered, this.get(i, F.answered) + 1);
    if (resent) this.set(i, F.answeredAfterResend, this.get(i, F.answeredAfterResend) + 1);
    if (tc) this.set(i, F.truncated, this.get(i, F.truncated) + 1);
    const r = RCODES.indexOf(rcode as (typeof RCODES)[number]);
    if (r >= 0) this.set(i, COUNTS.length + r, this.get(i, COUNTS.length + r) + 1);
    else {
      let m = this.otherRcodes.get(i);
      if (m === undefined) this.otherRcodes.set(i, (m = new Map()));
      m.set(rcode, (m.get(rcode) ?? 0) + 1);
    }
    const us = Math.max(0, Math.min(0xfffffffe, Math.round(waitedUs)));
    this.set(i, LAT_N, this.get(i, LAT_N) + 1);
    if (us < this.get(i, LAT_LO)) this.set(i, LAT_LO, us);
    if (us > this.get(i, LAT_HI)) this.set(i, LAT_HI, us);
    const sums = this.sums[i >>> 16]!;
    sums[i & (BLOCK - 1)] = (sums[i & (BLOCK - 1)] ?? 0) + us;
    this.hists.get(i)?.record(waitedUs);
  }

  /** Every client: its address and row. */
  /**
   * The `k` rows first by `rank` (larger first), with their addresses: kept in a bounded list as the table is walked, so
   * picking the first thousand of a million clients makes no million of anything.
   */
  top(k: number, rank: (row: ClientTally) => number[]): Array<{ address: string; row: number }> {
    let top: Array<{ key: number | string; row: number; r: number[] }> = [];
    const cmp = (a: { r: number[] }, b: { r: number[] }): number => {
      for (let j = 0; j < a.r.length; j++) if (a.r[j] !== b.r[j]) return b.r[j]! - a.r[j]!;
      return 0;
    };
    const view = new ClientTally(this, 0);
    for (const [key, row] of this.index) {
      view.row = row;
      top.push({ key, row, r: rank(view) });
      if (top.length >= 2 * k) top = top.sort(cmp).slice(0, k);
    }
    return top.sort(cmp).slice(0, k).map((t) => ({ address: addressOf(t.key), row: t.row }));
  }

  hasPercentiles(i: number): boolean {
    return this.hists.has(i);
  }

  stats(i: number): GroupStats {
    const counts = Object.fromEntries(COUNTS.map((k, f) => [k, this.get(i, f)])) as Record<Count, number>;
    const rcodes: Record<string, number> = {};
    RCODES.forEach((name, r) => {
      const n = this.get(i, COUNTS.length + r);
      if (n > 0) rcodes[name] = n;
    });
    for (const [name, n] of this.otherRcodes.get(i) ?? []) rcodes[name] = n;
    const sorted = Object.fromEntries(Object.entries(rcodes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
    const n = this.get(i, LAT_N);
    const h = this.hists.get(i);
    const f = (us: number): number => Number((us / 1000).toFixed(3));
    const latencyMs = n === 0 ? null : h !== undefined ? h.summaryIn(1000) : { min: f(this.get(i, LAT_LO)), mean: f(this.sums[i >>> 16]![i & (BLOCK - 1)]! / n), p50: null, p90: null, p99: null, p999: null, max: f(this.get(i, LAT_HI)) };
    return { ...counts, rcodes: sorted, latencyMs };
  }
}

/** Each count's place in a row. */
const F = Object.fromEntries(COUNTS.map((k, f) => [k, f])) as Record<Count, number>;

/** One client's counts, as a query's group: reads and writes go to its row. */
export class ClientTally implements Tally {
  declare queries: number;
  declare answered: number;
  declare unanswered: number;
  declare resends: number;
  declare answeredAfterResend: number;
  declare late: number;
  declare truncated: number;
  declare truncatedNoTcp: number;
  declare truncatedTcpFailed: number;
  declare tcp: number;
  declare tcpUnanswered: number;
  declare searchQueries: number;
  declare raceSignature: number;
  declare aaaa: number;

  constructor(readonly table: ClientTable, public row: number) {}

  answer(rcode: string, waitedUs: number, resent: boolean, tc: boolean): void {
    this.table.answer(this.row, rcode, waitedUs, resent, tc);
  }
}
for (const [k, f] of Object.entries(F)) {
  Object.defineProperty(ClientTally.prototype, k, {
    get(this: ClientTally) {
      return this.table.get(this.row, f);
    },
    set(this: ClientTally, v: number) {
      this.table.set(this.row, f, v);
    },
  });
}

