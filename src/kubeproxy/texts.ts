/**
 * Text kept outside the heap: a dump's names, comments, addresses and nft rule lines as UTF-8 bytes in chunks that
 * never move, each string by id. Millions of short strings cost the heap more than their text, and the garbage
 * collector every time it looks at them (docs/performance.md).
 */

/**
 * A string that is not a slice of a larger one: V8 keeps a slice of 13 characters or more as a view of its parent,
 * so one kept word would keep the whole dump alive. Shorter slices are copies already. Through UTF-8 bytes, the copy
 * is one flat string (85 bytes for 52 characters); `(' ' + s).slice(1)` would give a slice of a copy (120 bytes).
 * Lossless: the text was decoded from UTF-8.
 */
export function detach(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

const PAGE_BITS = 20;
const PAGE = 1 << PAGE_BITS;

/**
 * Bytes outside the heap in chunks of 1 MiB (more for a longer string), never moved: a buffer grown by copying would
 * hold the old and the new at once, twice the text at the worst moment. A string's place is one number, its offset
 * in a space where each chunk starts on a MiB: the chunk is found by the offset's MiB.
 */
class Arena {
  /** Per MiB of the space: the chunk over it, and where that chunk starts. */
  private readonly chunks: Buffer[] = [];
  private readonly bases: number[] = [];
  private chunk = Buffer.allocUnsafe(0);
  private base = 0;
  /** Bytes used in the current chunk. */
  private used = 0;

  /** Room for `n` more bytes in the current chunk, a new chunk if it has not; the offset they go to. */
  reserve(n: number): number {
    if (this.used + n > this.chunk.length) {
      const pages = Math.max(1, Math.ceil(n / PAGE));
      // Not zeroed: only bytes written are ever read, and pages never written are never touched.
      this.chunk = Buffer.allocUnsafe(pages * PAGE);
      this.base = this.chunks.length * PAGE;
      for (let k = 0; k < pages; k++) {
        this.chunks.push(this.chunk);
        this.bases.push(this.base);
      }
      this.used = 0;
    }
    return this.base + this.used;
  }

  /** `s` written at the offset `reserve` gave (room for it reserved: 3 bytes a character); the offset after it. */
  write(s: string, encoding: 'utf8' | 'latin1'): number {
    this.used += this.chunk.write(s, this.used, encoding);
    return this.base + this.used;
  }

  /** Bytes copied in at the reserved offset; the offset after them. */
  copyIn(from: Buffer, n: number): number {
    from.copy(this.chunk, this.used, 0, n);
    this.used += n;
    return this.base + this.used;
  }

  /** The chunk holding offset `at`, and `at` within it. */
  locate(at: number): [Buffer, number] {
    const page = at >>> PAGE_BITS;
    return [this.chunks[page]!, at - this.bases[page]!];
  }

  text(start: number, end: number): string {
    const page = start >>> PAGE_BITS;
    const base = this.bases[page]!;
    return this.chunks[page]!.toString('utf8', start - base, end - base);
  }
}

function grown(a: Int32Array, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(Math.max(1024, n * 2));
  b.set(a);
  return b;
}

/**
 * Strings that seldom repeat (comments, addresses, nft rule lines), as UTF-8 bytes outside the heap: a million of
 * them as strings would cost the heap ~100 MiB and a Map to share them more. A string equal to the last one added to
 * the same column shares its id (a chain's rules repeat their comment).
 */
export class Texts {
  private readonly bytes = new Arena();
  private starts = new Int32Array(0);
  private ends = new Int32Array(0);
  private n = 0;
  /** Per column, the last string added and its id. */
  private readonly last: Array<string | undefined> = [];
  private readonly lastId: number[] = [];

  /** Texts added. */
  get count(): number {
    return this.n;
  }

  /** The id of `s`, stored; with a column, the id of the last string of that column if `s` equals it. */
  add(s: string, column?: number): number {
    if (column !== undefined && s === this.last[column]) return this.lastId[column]!;
    if (this.n === this.starts.length) {
      this.starts = grown(this.starts, this.n);
      this.ends = grown(this.ends, this.n);
    }
    this.starts[this.n] = this.bytes.reserve(s.length * 3);
    this.ends[this.n] = this.bytes.write(s, 'utf8');
    if (column !== undefined) {
      this.last[column] = s;
      this.lastId[column] = this.n;
    }
    return this.n++;
  }

  get(id: number): string | undefined {
    return id < 0 ? undefined : this.bytes.text(this.starts[id]!, this.ends[id]!);
  }
}

/**
 * Each distinct name of a dump once, by id: chains, targets, protocols. A node with 170,000 Services has a million
 * chain names; as strings in a Map they cost ~180 bytes each, here their UTF-8 bytes and 16 bytes of table. An open
 * addressing table of ids, hashed with FNV-1a over the bytes (a name's characters when they are all ASCII, which
 * are its bytes). `get` makes a string each call.
 */
export class Names {
  private readonly bytes = new Arena();
  private starts = new Int32Array(1024);
  private lens = new Int32Array(1024);
  private hashes = new Int32Array(1024);
  private n = 0;
  /** id + 1 per slot, 0 for an empty one; at most half full. */
  private slots = new Int32Array(2048);
  /** A name with characters past ASCII, as UTF-8 (rare: kube-proxy's names are ASCII). */
  private scratch = Buffer.allocUnsafe(256);
  private scratchLen = 0;
  private seekHash = 0;
  private seekSlot = 0;

  get count(): number {
    return this.n;
  }

  /** The id of `s`, added if new. */
  id(s: string): number {
    const found = this.seek(s);
    if (found >= 0) return found;
    const id = this.append(s, this.seekHash);
    this.slots[this.seekSlot] = id + 1;
    if (this.n * 2 > this.slots.length) this.rehash();
    return id;
  }

  /** The id of a name already seen, or -1 (a lookup that adds nothing). */
  find(s: string): number {
    return this.seek(s);
  }

  /** The id of `s`, or -1 with `seekSlot` the empty slot where it would go; `seekHash` its hash either way. */
  private seek(s: string): number {
    const h = this.hash(s);
    const mask = this.slots.length - 1;
    let i = h & mask;
    this.seekHash = h;
    for (let slot = this.slots[i]!; slot !== 0; slot = this.slots[i]!) {
      if (this.hashes[slot - 1] === h && this.equals(slot - 1, s)) return slot - 1;
      i = (i + 1) & mask;
    }
    this.seekSlot = i;
    return -1;
  }

  get(id: number): string | undefined {
    if (id < 0 || id >= this.n) return undefined;
    const start = this.starts[id]!;
    return this.bytes.text(start, start + this.lens[id]!);
  }

  /** FNV-1a over the name's UTF-8 bytes; a name past ASCII is encoded into `scratch` first (scratchLen > 0). */
  private hash(s: string): number {
    let h = 0x811c9dc5 | 0;
    const n = s.length;
    let ascii = true;
    for (let k = 0; k < n; k++) {
      const c = s.charCodeAt(k);
      if (c > 127) {
        ascii = false;
        break;
      }
      h = Math.imul(h ^ c, 0x01000193);
    }
    this.scratchLen = 0;
    if (ascii) return h;
    if (this.scratch.length < n * 3) this.scratch = Buffer.allocUnsafe(n * 3);
    this.scratchLen = this.scratch.write(s, 0, 'utf8');
    h = 0x811c9dc5 | 0;
    for (let k = 0; k < this.scratchLen; k++) h = Math.imul(h ^ this.scratch[k]!, 0x01000193);
    return h;
  }

  /** Whether name `id` is `s` (hashed just before: scratch holds its bytes if it is past ASCII). */
  private equals(id: number, s: string): boolean {
    const len = this.lens[id]!;
    const [b, start] = this.bytes.locate(this.starts[id]!);
    if (this.scratchLen > 0) return len === this.scratchLen && b.compare(this.scratch, 0, len, start, start + len) === 0;
    if (len !== s.length) return false;
    for (let k = 0; k < len; k++) if (b[start + k] !== s.charCodeAt(k)) return false;
    return true;
  }

  private append(s: string, h: number): number {
    if (this.n === this.starts.length) {
      this.starts = grown(this.starts, this.n);
      this.lens = grown(this.lens, this.n);
      this.hashes = grown(this.hashes, this.n);
    }
    const len = this.scratchLen > 0 ? this.scratchLen : s.length;
    const start = this.bytes.reserve(len);
    if (this.scratchLen > 0) this.bytes.copyIn(this.scratch, len);
    else this.bytes.write(s, 'latin1');
    const id = this.n++;
    this.starts[id] = start;
    this.lens[id] = len;
    this.hashes[id] = h;
    return id;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let id = 0; id < this.n; id++) {
      let i = this.hashes[id]! & mask;
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = id + 1;
    }
    this.slots = slots;
  }
}

/**
 * Named lists of texts (nft chains and their rule lines, maps and their elements), the texts in one Texts. A list's
 * lines are ids start..start+count: `nft list ruleset` prints a chain's lines together. A list added to again after
 * another has its lines moved to the end first, so it stays one run.
 */
export class TextLists {
  private readonly texts = new Texts();
  private readonly names = new Names();
  private start = new Int32Array(1024);
  private size = new Int32Array(1024);
  private current = -1;
  /** Lines in all lists. */
  items = 0;

  /** A list, empty if new; `push` adds to it. Its id. */
  add(name: string): number {
    const before = this.names.count;
    const id = this.names.id(name);
    if (id === before) {
      if (id === this.start.length) {
        this.start = grown(this.start, id);
        this.size = grown(this.size, id);
      }
      this.start[id] = this.texts.count;
      this.size[id] = 0;
    }
    return id;
  }

  push(name: string, text: string): void {
    const id = this.add(name);
    if (id !== this.current) {
      // Moved to the end, so the list stays one run of ids (the first time, it is empty: nothing moves).
      const from = this.start[id]!;
      const n = this.size[id]!;
      this.start[id] = this.texts.count;
      for (let i = 0; i < n; i++) this.texts.add(this.texts.get(from + i)!);
      this.current = id;
    }
    this.texts.add(text);
    this.size[id]!++;
    this.items++;
  }

  has(name: string): boolean {
    return this.names.find(name) >= 0;
  }

  /** The list's texts, made for the caller; undefined for a list never added. */
  get(name: string): string[] | undefined {
    const id = this.names.find(name);
    if (id < 0) return undefined;
    const from = this.start[id]!;
    const n = this.size[id]!;
    const out: string[] = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = this.texts.get(from + i)!;
    return out;
  }

  /** The list's texts one at a time (none for a list never added): a map of 100,000s of elements is never held whole. */
  *lines(name: string): Generator<string> {
    const id = this.names.find(name);
    if (id < 0) return;
    const from = this.start[id]!;
    const n = this.size[id]!;
    for (let i = 0; i < n; i++) yield this.texts.get(from + i)!;
  }

  /** The lists' names, in the order added. */
  *keys(): Generator<string> {
    for (let id = 0; id < this.names.count; id++) yield this.names.get(id)!;
  }

  /** Lists added. */
  get lists(): number {
    return this.names.count;
  }
}
