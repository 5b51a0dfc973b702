/**
 * Every client's counts, exact, in rows of 32-bit numbers: a busy node's capture names a million pod addresses, and an
 * object per client (a Map of rcodes, a histogram) cost a kilobyte or more each. A row is 48 bytes (92 for a client with
 * resends, late or truncated answers, TCP or rarer rcodes); rows live in blocks of 65,536, so the table grows without
 * copying. A client's latency is its exact least, mean and most; the
 * first CLIENT_HISTOGRAMS clients seen also keep a histogram for their percentiles.
 */
import { Counters, Histogram, LATENCY_MARKS_US } from '../stats/index.js';
import type { GroupStats } from './groups.js';

export const COUNTS = ['queries', 'answered', 'unanswered', 'resends', 'answeredAfterResend', 'late', 'truncated', 'truncatedNoTcp', 'truncatedTcpFailed', 'tcp', 'tcpUnanswered', 'searchQueries', 'raceSignature', 'aaaa'] as const;
type Count = (typeof COUNTS)[number];

/** What a query's groups count as things happen to it: all of them, its client, its server, its endpoint. */
export type Tally = { [K in Count]: number } & {
  answer(rcode: string, waitedUs: number, resent: boolean, tc: boolean): void;
};

/** The rcodes kept in a row; any other is counted in a small map of its own. */
const RCODES = ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED'] as const;
/** Every field a row counts: the counts, then the rcodes. */
const FIELDS = [...COUNTS, ...RCODES] as const;
/**
 * A row's counts that most clients have: in the hot row (with the latency's least and most, and where its cold row is).
 * The rest (resends, late and truncated answers, TCP, the race, rarer rcodes) are in a cold row, made for a client only
 * when one of them is first counted: 48 bytes a client, 92 with a cold row.
 */
const HOT: ReadonlyArray<(typeof FIELDS)[number]> = ['queries', 'answered', 'unanswered', 'aaaa', 'searchQueries', 'NOERROR', 'NXDOMAIN'];
const COLD = FIELDS.filter((f) => !HOT.includes(f));
/** Each field's place: in the hot row (>= 0), or -1 - its place in the cold row. */
const PLACE = FIELDS.map((f) => (HOT.includes(f) ? HOT.indexOf(f) : -1 - COLD.indexOf(f)));
const LAT_LO = HOT.length;
const LAT_HI = HOT.length + 1;
/** The cold row + 1; 0: none yet. */
const COLD_ROW = HOT.length + 2;
const STRIDE = HOT.length + 3;
const COLD_STRIDE = COLD.length;
const BLOCK = 1 << 16;
/** Clients with a latency histogram (about 43 KB each) for their percentiles: the first seen. */
export const CLIENT_HISTOGRAMS = 100;

/** An IPv4 address as a small integer (a Map keeps it without a string); any other address as itself. */
function keyOf(address: string): number | string {
  const p = address.split('.');
  if (p.length !== 4) return address;
  let n = 0;
  for (const part of p) {
    const b = Number(part);
    if (!/^\d{1,3}$/.test(part) || b > 255) return address;
    n = n * 256 + b;
  }
  return (n ^ 0x80000000) | 0;
}

function addressOf(key: number | string): string {
  if (typeof key === 'string') return key;
  const n = (key ^ 0x80000000) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/**
 * IPv4 keys to rows by open addressing in two typed arrays: no object and no map entry per client, nothing for the
 * garbage collector to walk. Grows at half full.
 */
class V4Index {
  private bits = 12;
  private keys = new Int32Array(1 << this.bits);
  /** The row + 1; 0 is an empty slot. */
  private vals = new Int32Array(1 << this.bits);
  size = 0;

  private slot(key: number): number {
    const mask = (1 << this.bits) - 1;
    let h = Math.imul(key, 0x9e3779b1) >>> (32 - this.bits);
    while (this.vals[h] !== 0 && this.keys[h] !== key) h = (h + 1) & mask;
    return h;
  }

  get(key: number): number | undefined {
    const v = this.vals[this.slot(key)]!;
    return v === 0 ? undefined : v - 1;
  }

  set(key: number, row: number): void {
    if ((this.size + 1) * 2 > this.vals.length) this.grow();
    const h = this.slot(key);
    if (this.vals[h] === 0) this.size++;
    this.keys[h] = key;
    this.vals[h] = row + 1;
  }

  *entries(): IterableIterator<[number, number]> {
    for (let h = 0; h < this.vals.length; h++) if (this.vals[h] !== 0) yield [this.keys[h]!, this.vals[h]! - 1];
  }

  private grow(): void {
    const { keys, vals } = this;
    this.bits++;
    this.keys = new Int32Array(1 << this.bits);
    this.vals = new Int32Array(1 << this.bits);
    this.size = 0;
    for (let h = 0; h < vals.length; h++) if (vals[h] !== 0) this.set(keys[h]!, vals[h]! - 1);
  }
}

export class ClientTable {
  private readonly v4 = new V4Index();
  /** IPv6 (and any other) addresses. */
  private readonly other = new Map<string, number>();
  private readonly rows: Uint32Array[] = [];
  private readonly sums: Float64Array[] = [];
  private readonly cold: Uint32Array[] = [];
  private colds = 0;
  private readonly otherRcodes = new Map<number, Map<string, number>>();
  private readonly hists = new Map<number, Histogram>();

  get size(): number {
    return this.v4.size + this.other.size;
  }

  /** The client's tally, its row made on first sight. */
  tally(address: string): ClientTally {
    const key = keyOf(address);
    let i = typeof key === 'number' ? this.v4.get(key) : this.other.get(key);
    if (i === undefined) {
      i = this.size;
      if ((i & (BLOCK - 1)) === 0) {
        this.rows.push(new Uint32Array(BLOCK * STRIDE));
        this.sums.push(new Float64Array(BLOCK));
      }
      this.rows[i >>> 16]![(i & (BLOCK - 1)) * STRIDE + LAT_LO] = 0xffffffff;
      if (typeof key === 'number') this.v4.set(key, i);
      else this.other.set(key, i);
      if (i < CLIENT_HISTOGRAMS) this.hists.set(i, new Histogram('us', LATENCY_MARKS_US));
    }
    return new ClientTally(this, i);
  }

  get(i: number, f: number): number {
    const row = this.rows[i >>> 16]!;
    const at = (i & (BLOCK - 1)) * STRIDE;
    const p = PLACE[f]!;
    if (p >= 0) return row[at + p]!;
    const c = row[at + COLD_ROW]!;
    return c === 0 ? 0 : this.cold[(c - 1) >>> 16]![((c - 1) & (BLOCK - 1)) * COLD_STRIDE - 1 - p]!;
  }

  set(i: number, f: number, v: number): void {
    const row = this.rows[i >>> 16]!;
    const at = (i & (BLOCK - 1)) * STRIDE;
    const p = PLACE[f]!;
    if (p >= 0) {
      row[at + p] = v;
      return;
    }
    let c = row[at + COLD_ROW]!;
    if (c === 0) {
      if (v === 0) return;
      if ((this.colds & (BLOCK - 1)) === 0) this.cold.push(new Uint32Array(BLOCK * COLD_STRIDE));
      c = ++this.colds;
      row[at + COLD_ROW] = c;
    }
    this.cold[(c - 1) >>> 16]![((c - 1) & (BLOCK - 1)) * COLD_STRIDE - 1 - p] = v;
  }

  /** One more of field `f`. */
  private bump(i: number, f: number): void {
    const p = PLACE[f]!;
    if (p >= 0) this.rows[i >>> 16]![(i & (BLOCK - 1)) * STRIDE + p]!++;
    else this.set(i, f, this.get(i, f) + 1);
  }

  answer(i: number, rcode: string, waitedUs: number, resent: boolean, tc: boolean): void {
    this.bump(i, F.answered);
    if (resent) this.bump(i, F.answeredAfterResend);
    if (tc) this.bump(i, F.truncated);
    const r = RCODES.indexOf(rcode as (typeof RCODES)[number]);
    if (r >= 0) this.bump(i, COUNTS.length + r);
    else {
      let m = this.otherRcodes.get(i);
      if (m === undefined) this.otherRcodes.set(i, (m = new Map()));
      m.set(rcode, (m.get(rcode) ?? 0) + 1);
    }
    const us = Math.max(0, Math.min(0xfffffffe, Math.round(waitedUs)));
    const row = this.rows[i >>> 16]!;
    const at = (i & (BLOCK - 1)) * STRIDE;
    if (us < row[at + LAT_LO]!) row[at + LAT_LO] = us;
    if (us > row[at + LAT_HI]!) row[at + LAT_HI] = us;
    this.sums[i >>> 16]![i & (BLOCK - 1)]! += us;
    this.hists.get(i)?.record(waitedUs);
  }

  /** Every client: its address and row. */
  private *entries(): IterableIterator<[number | string, number]> {
    yield* this.v4.entries();
    yield* this.other;
  }

  /**
   * The `k` rows first by `rank` (larger first), with their addresses: kept in a bounded list as the table is walked, so
   * picking the first thousand of a million clients keeps no million of anything.
   */
  top(k: number, rank: (row: ClientTally) => number[]): Array<{ address: string; row: number }> {
    let top: Array<{ key: number | string; row: number; r: number[] }> = [];
    const cmp = (a: { r: number[] }, b: { r: number[] }): number => {
      for (let j = 0; j < a.r.length; j++) if (a.r[j] !== b.r[j]) return b.r[j]! - a.r[j]!;
      return 0;
    };
    const view = new ClientTally(this, 0);
    for (const [key, row] of this.entries()) {
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
    const rcodes = new Counters();
    RCODES.forEach((name, r) => {
      const n = this.get(i, COUNTS.length + r);
      if (n > 0) rcodes.add(name, n);
    });
    for (const [name, n] of this.otherRcodes.get(i) ?? []) rcodes.add(name, n);
    // Every answer has its latency: the answered count is theirs.
    const n = this.get(i, F.answered);
    const h = this.hists.get(i);
    const f = (us: number): number => Number((us / 1000).toFixed(3));
    const latencyMs = n === 0 ? null : h !== undefined ? h.summaryIn(1000) : { min: f(this.rows[i >>> 16]![(i & (BLOCK - 1)) * STRIDE + LAT_LO]!), mean: f(this.sums[i >>> 16]![i & (BLOCK - 1)]! / n), p50: null, p90: null, p99: null, p999: null, max: f(this.rows[i >>> 16]![(i & (BLOCK - 1)) * STRIDE + LAT_HI]!) };
    return { ...counts, rcodes: rcodes.toJSON(), latencyMs };
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

