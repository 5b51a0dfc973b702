/**
 * The queries a run cycles through, kept as their encoded packets back to back in one buffer: a `--queries` file of
 * millions of lines costs its packets' bytes and a few bytes of index per line, not an object, a Buffer and a string
 * per line. A query's name is read back from its packet when it is shown (a slow-answer line).
 */
import type { RecordType } from 'dns-packet';
import { makeTemplate, typeLabel } from '../dns/wire.js';
import type { QueryTemplate } from '../dns/wire.js';

export interface QuerySpec {
  name: string;
  type: RecordType;
}

const HEADER_LEN = 12;
/** A name whose packet this module writes itself (ASCII letters, digits, '-', '_' and dots); others go to dns-packet. */
const PLAIN = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$/;

export class QueryList {
  private bytes: Buffer;
  private used = 0;
  private offsets: Uint32Array;
  /** Per query: index into `types`, and bit 0x8000 when its name was given with a trailing dot. */
  private kinds: Uint16Array;
  private readonly types: RecordType[] = [];
  /** Each type as shown to users (TYPE65 for a type without a name). */
  private readonly labels: string[] = [];
  private readonly typeIndex = new Map<RecordType, number>();
  /** The type and class bytes of each type's question, as dns-packet writes them. */
  private readonly typeBytes: Buffer[] = [];
  /** Names dns-packet wrote (not plain ASCII), as given: read back from a packet they might differ. */
  private readonly odd = new Map<number, string>();
  count = 0;
  /** The longest packet. */
  maxLength = 0;

  constructor(expected = 16) {
    this.bytes = Buffer.alloc(Math.max(64, expected * 32));
    this.offsets = new Uint32Array(expected + 1);
    this.kinds = new Uint16Array(expected);
  }

  static from(specs: readonly QuerySpec[]): QueryList {
    const list = new QueryList(specs.length);
    for (const q of specs) list.add(q.name, q.type);
    return list;
  }

  /** Appends a query; the name is checked by the caller (checkName). */
  add(name: string, type: RecordType): void {
    let t = this.typeIndex.get(type);
    if (t === undefined) {
      if (this.types.length >= 0x7fff) throw new Error('more than 32767 record types');
      t = this.types.length;
      this.types.push(type);
      this.labels.push(typeLabel(type));
      this.typeIndex.set(type, t);
      const sample = makeTemplate('a', type);
      this.typeBytes.push(Buffer.from(sample.bytes.subarray(sample.qEnd - 4, sample.qEnd)));
    }
    const dotted = name.endsWith('.');
    let length: number;
    if (PLAIN.test(name)) {
      // Written in place: the header (ID 0, RD, one question), each label's length and ASCII bytes, the type and class.
      const bodyLength = dotted ? name.length - 1 : name.length;
      length = HEADER_LEN + bodyLength + 2 + 4;
      this.reserve(length);
      const p = this.bytes;
      const start = this.used;
      p.fill(0, start, start + HEADER_LEN);
      p[start + 2] = 0x01;
      p[start + 5] = 1;
      let lengthAt = start + HEADER_LEN;
      let at = lengthAt + 1;
      for (let k = 0; k < bodyLength; k++) {
        const ch = name.charCodeAt(k);
        if (ch === 46 /* . */) {
          p[lengthAt] = at - lengthAt - 1;
          lengthAt = at++;
        } else p[at++] = ch;
      }
      p[lengthAt] = at - lengthAt - 1;
      p[at++] = 0;
      this.typeBytes[t]!.copy(p, at);
    } else {
      const packet = makeTemplate(name, type).bytes;
      length = packet.length;
      this.reserve(length);
      this.bytes.set(packet, this.used);
      this.odd.set(this.count, name);
    }
    this.used += length;
    this.kinds[this.count] = t | (dotted ? 0x8000 : 0);
    this.count++;
    this.offsets[this.count] = this.used;
    if (length > this.maxLength) this.maxLength = length;
  }

  private reserve(n: number): void {
    if (this.count + 1 >= this.offsets.length) {
      const grow = (a: Uint32Array | Uint16Array, size: number): typeof a => {
        const b = new (a.constructor as { new (n: number): typeof a })(size);
        b.set(a);
        return b;
      };
      const size = this.offsets.length * 2;
      this.offsets = grow(this.offsets, size) as Uint32Array;
      this.kinds = grow(this.kinds, size) as Uint16Array;
    }
    if (this.used + n > this.bytes.length) {
      const b = Buffer.alloc(Math.max(this.bytes.length * 2, this.used + n));
      this.bytes.copy(b, 0, 0, this.used);
      this.bytes = b;
    }
  }

  /**
   * Query `i`'s packet (ID 0), question and what is shown of it. Made per use for lists too long to keep templates
   * of (engine.ts): the name, read back from the packet, only when it is asked for (a slow answer), not per send.
   */
  template(i: number): QueryTemplate {
    return new PackedTemplate(this, i, this.bytes.subarray(this.offsets[i]!, this.offsets[i + 1]!), this.types[this.kinds[i]! & 0x7fff]!, this.labels[this.kinds[i]! & 0x7fff]!);
  }

  /** Query `i`'s name as it was given (a trailing dot kept). */
  name(i: number): string {
    const odd = this.odd.get(i);
    if (odd !== undefined) return odd;
    const b = this.bytes;
    let at = this.offsets[i]! + HEADER_LEN;
    const labels: string[] = [];
    for (let len = b[at]!; len !== 0; len = b[at]!) {
      labels.push(b.toString('latin1', at + 1, at + 1 + len));
      at += 1 + len;
    }
    return labels.join('.') + ((this.kinds[i]! & 0x8000) !== 0 ? '.' : '');
  }

  type(i: number): RecordType {
    return this.types[this.kinds[i]! & 0x7fff]!;
  }

  *names(): Generator<string> {
    for (let i = 0; i < this.count; i++) yield this.name(i);
  }
}

/** A template of a packed list: its name is read from the packet when asked for. */
class PackedTemplate implements QueryTemplate {
  readonly qStart = HEADER_LEN;
  readonly qEnd: number;

  constructor(
    private readonly list: QueryList,
    private readonly index: number,
    readonly bytes: Buffer,
    readonly type: RecordType,
    readonly label: string,
  ) {
    this.qEnd = bytes.length;
  }

  get name(): string {
    return this.list.name(this.index);
  }
}
