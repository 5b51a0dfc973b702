/**
 * The rules of one iptables table (nat, filter) of one family, a column per field: a node with 50,000 Services has
 * a million rules, and a million objects cost the heap ~200 bytes each and the garbage collector every promotion
 * (docs/performance.md). Here a rule is an index: its chain, target and protocol are ids in the dump's table of
 * names, its comment and addresses ids in the table's own texts (both UTF-8 bytes outside the heap), its numbers sit
 * in typed arrays. `rule(i)` gives one rule as an object, for tests and for callers that want one.
 */
import type { Rule } from './dump.js';
import { detach, Names, Texts } from './texts.js';

export { Names } from './texts.js';

const GOTO = 1;
const CONDITIONAL = 2;
const DEST_NEGATED = 4;
const SOURCE_NEGATED = 8;
const HAS_COUNTERS = 16;
/** dport column: no port; a port that is not a whole number (a range, a name) reads back as NaN. */
const NO_PORT = -1;
const BAD_PORT = -2;

type Recent = NonNullable<Rule['recent']>;

/** Rules in the order read; once sealed, each chain's rules in order through `rules(chain)`. */
export class RuleTable {
  count = 0;
  private cap = 0;
  private chainCol = new Int32Array(0);
  private targetCol = new Int32Array(0);
  private commentCol = new Int32Array(0);
  private protoCol = new Int32Array(0);
  private dnatCol = new Int32Array(0);
  private destCol = new Int32Array(0);
  private sourceCol = new Int32Array(0);
  private probTextCol = new Int32Array(0);
  private probCol = new Float64Array(0);
  private dportCol = new Int32Array(0);
  private lineCol = new Int32Array(0);
  private flagCol = new Uint8Array(0);
  /** Counters (iptables-save -c), made at the first rule that has them. */
  private packetsCol: Float64Array | null = null;
  private bytesCol: Float64Array | null = null;
  /** -m recent is rare (session affinity): kept by rule index. */
  private readonly recents = new Map<number, Recent>();
  private declaredIds: number[] = [];
  /** After seal: per chain id, where its rules start in `order`, and its count; declared chains by id. */
  private order = new Int32Array(0);
  private start = new Int32Array(0);
  private size = new Int32Array(0);
  private declaredBits = new Uint8Array(0);
  private chainIds: number[] = [];
  private sealed = false;

  constructor(
    readonly name: string,
    readonly names: Names,
  ) {}

  /** Per column of names, the last string stored and its id. */
  private readonly last: Array<string | undefined> = [undefined, undefined, undefined, undefined];
  private readonly lastIds = [-1, -1, -1, -1];
  /** Comments and addresses: seldom two alike, never looked up. */
  private readonly texts = new Texts();

  /** Append one rule (its strings interned: the rule may hold slices of a line). */
  push(r: Rule): void {
    if (this.sealed) throw new Error('rule table sealed');
    if (this.count === this.cap) this.grow();
    const i = this.count++;
    this.chainCol[i] = this.nameId(r.chain, 0);
    this.targetCol[i] = this.nameId(r.target, 1);
    this.commentCol[i] = this.textId(r.comment, 0);
    this.protoCol[i] = this.nameId(r.proto, 2);
    this.dnatCol[i] = this.textId(r.dnat, 1);
    this.destCol[i] = this.textId(r.dest, 2);
    this.sourceCol[i] = this.textId(r.source, 3);
    this.probTextCol[i] = this.nameId(r.probabilityText, 3);
    this.probCol[i] = r.probability ?? NaN;
    const p = r.dport;
    this.dportCol[i] = p === undefined ? NO_PORT : Number.isInteger(p) && p >= 0 && p <= 0x7fffffff ? p : BAD_PORT;
    this.lineCol[i] = r.line;
    this.flagCol[i] = (r.goto ? GOTO : 0) | (r.conditional ? CONDITIONAL : 0) | (r.destNegated ? DEST_NEGATED : 0) | (r.sourceNegated ? SOURCE_NEGATED : 0) | (r.counters !== undefined ? HAS_COUNTERS : 0);
    if (r.counters !== undefined) {
      if (this.packetsCol === null || this.bytesCol === null) {
        this.packetsCol = new Float64Array(this.cap);
        this.bytesCol = new Float64Array(this.cap);
      }
      this.packetsCol[i] = r.counters.packets;
      this.bytesCol[i] = r.counters.bytes;
    }
    if (r.recent !== undefined) this.recents.set(i, { ...r.recent, name: detach(r.recent.name) });
  }

  /**
   * The id of a name in column `column`. A chain's rules come together and most share their target, protocol and
   * probability with the rule before: comparing with the column's last string is cheaper than hashing a new one.
   */
  private nameId(s: string | undefined, column: number): number {
    if (s === undefined) return -1;
    if (s !== this.last[column]) {
      this.last[column] = s;
      this.lastIds[column] = this.names.id(s);
    }
    return this.lastIds[column]!;
  }

  private textId(s: string | undefined, column: number): number {
    return s === undefined ? -1 : this.texts.add(s, column);
  }

  /** A chain declared (`:KUBE-SEP-X - [0:0]`, nft's `chain X {`), with or without rules. */
  declare(chain: string): void {
    if (this.sealed) throw new Error('rule table sealed');
    this.declaredIds.push(this.names.id(chain));
  }

  /** Another table of the same name read later (a second dump of the family): its rules after these. */
  append(other: RuleTable): void {
    for (let i = 0; i < other.count; i++) this.push(other.rule(i));
    // By name: the other table may keep its names apart.
    for (const d of other.declaredIds) this.declaredIds.push(this.names.id(other.names.get(d) ?? ''));
  }

  /** Done reading: index each chain's rules (a counting sort by chain, stable, so each chain keeps its order). */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    // Indexed by chain id up to the largest this table uses (a small filter table needs no room for every name).
    let ids = 0;
    for (let i = 0; i < this.count; i++) ids = Math.max(ids, this.chainCol[i]! + 1);
    for (const d of this.declaredIds) ids = Math.max(ids, d + 1);
    const size = new Int32Array(ids);
    for (let i = 0; i < this.count; i++) size[this.chainCol[i]!]!++;
    const start = new Int32Array(ids);
    const chainIds: number[] = [];
    let at = 0;
    for (let c = 0; c < ids; c++) {
      start[c] = at;
      const k = size[c]!;
      if (k > 0) chainIds.push(c);
      at += k;
    }
    const fill = start.slice();
    const order = new Int32Array(this.count);
    for (let i = 0; i < this.count; i++) order[fill[this.chainCol[i]!]!++] = i;
    const declared = new Uint8Array(ids);
    for (const d of this.declaredIds) declared[d] = 1;
    this.declaredIds = [];
    this.order = order;
    this.start = start;
    this.size = size;
    this.declaredBits = declared;
    this.chainIds = chainIds;
  }

  /** The indices of a chain's rules in order; empty for a chain with none (declared or not). */
  rules(chain: string): Int32Array {
    const c = this.names.find(chain);
    if (c < 0 || c >= this.size.length) return this.order.subarray(0, 0);
    const s = this.start[c]!;
    return this.order.subarray(s, s + this.size[c]!);
  }

  /** The chain has rules. */
  hasRules(chain: string): boolean {
    const c = this.names.find(chain);
    return c >= 0 && c < this.size.length && this.size[c]! > 0;
  }

  /** The chain is declared or has rules. */
  has(chain: string): boolean {
    const c = this.names.find(chain);
    return c >= 0 && c < this.size.length && (this.declaredBits[c] === 1 || this.size[c]! > 0);
  }

  /** Names of the chains with rules, in the order of the dump's names. */
  *chains(): Generator<string> {
    for (const c of this.chainIds) yield this.names.get(c)!;
  }

  /** Names of the chains declared, or with rules. */
  *declared(): Generator<string> {
    const n = this.size.length;
    for (let c = 0; c < n; c++) if (this.declaredBits[c] === 1 || this.size[c]! > 0) yield this.names.get(c)!;
  }

  chain(i: number): string {
    return this.names.get(this.chainCol[i]!)!;
  }
  target(i: number): string | undefined {
    return this.names.get(this.targetCol[i]!);
  }
  comment(i: number): string | undefined {
    return this.texts.get(this.commentCol[i]!);
  }
  proto(i: number): string | undefined {
    return this.names.get(this.protoCol[i]!);
  }
  dnat(i: number): string | undefined {
    return this.texts.get(this.dnatCol[i]!);
  }
  dest(i: number): string | undefined {
    return this.texts.get(this.destCol[i]!);
  }
  source(i: number): string | undefined {
    return this.texts.get(this.sourceCol[i]!);
  }
  probabilityText(i: number): string | undefined {
    return this.names.get(this.probTextCol[i]!);
  }
  probability(i: number): number | undefined {
    const p = this.probCol[i]!;
    return Number.isNaN(p) && this.probTextCol[i] === -1 ? undefined : p;
  }
  dport(i: number): number | undefined {
    const p = this.dportCol[i]!;
    return p === NO_PORT ? undefined : p === BAD_PORT ? NaN : p;
  }
  line(i: number): number {
    return this.lineCol[i]!;
  }
  goto(i: number): boolean {
    return (this.flagCol[i]! & GOTO) !== 0;
  }
  conditional(i: number): boolean {
    return (this.flagCol[i]! & CONDITIONAL) !== 0;
  }
  recent(i: number): Recent | undefined {
    return this.recents.get(i);
  }
  counters(i: number): { packets: number; bytes: number } | undefined {
    if (this.packetsCol === null || this.bytesCol === null || (this.flagCol[i]! & HAS_COUNTERS) === 0) return undefined;
    return { packets: this.packetsCol[i]!, bytes: this.bytesCol[i]! };
  }

  /** Rule `i` as an object, every field as read. */
  rule(i: number): Rule {
    const flags = this.flagCol[i]!;
    const r: Rule = { table: this.name, chain: this.chain(i), goto: (flags & GOTO) !== 0, conditional: (flags & CONDITIONAL) !== 0, line: this.line(i) };
    const set = <K extends keyof Rule>(k: K, v: Rule[K] | undefined): void => {
      if (v !== undefined) r[k] = v;
    };
    set('target', this.target(i));
    set('probability', this.probability(i));
    set('probabilityText', this.probabilityText(i));
    set('comment', this.comment(i));
    set('recent', this.recent(i));
    set('dnat', this.dnat(i));
    set('dest', this.dest(i));
    if (flags & DEST_NEGATED) r.destNegated = true;
    set('source', this.source(i));
    if (flags & SOURCE_NEGATED) r.sourceNegated = true;
    set('proto', this.proto(i));
    set('dport', this.dport(i));
    set('counters', this.counters(i));
    return r;
  }

  private grow(): void {
    const cap = Math.max(1024, this.cap * 2);
    const i32 = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    const f64 = (a: Float64Array): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.chainCol = i32(this.chainCol);
    this.targetCol = i32(this.targetCol);
    this.commentCol = i32(this.commentCol);
    this.protoCol = i32(this.protoCol);
    this.dnatCol = i32(this.dnatCol);
    this.destCol = i32(this.destCol);
    this.sourceCol = i32(this.sourceCol);
    this.probTextCol = i32(this.probTextCol);
    this.probCol = f64(this.probCol);
    this.dportCol = i32(this.dportCol);
    this.lineCol = i32(this.lineCol);
    const flags = new Uint8Array(cap);
    flags.set(this.flagCol);
    this.flagCol = flags;
    if (this.packetsCol !== null) this.packetsCol = f64(this.packetsCol);
    if (this.bytesCol !== null) this.bytesCol = f64(this.bytesCol);
    this.cap = cap;
  }
}
