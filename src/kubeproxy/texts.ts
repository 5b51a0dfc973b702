/**
 * Text kept outside the heap: a dump's comments, addresses and nft rule lines as UTF-8 bytes in one growing buffer,
 * each string by id. Millions of short strings cost the heap more than their text, and the garbage collector every
 * time it looks at them (docs/performance.md).
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

/**
 * Strings that seldom repeat (comments, addresses), as UTF-8 bytes in one growing buffer outside the heap: a
 * million of them as strings would cost the heap ~100 MiB and a Map to share them more. A string equal to the last
 * one added to the same column shares its id (a chain's rules repeat their comment).
 */
export class Texts {
  private bytes = Buffer.alloc(0);
  private used = 0;
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
      const cap = Math.max(1024, this.n * 2);
      const starts = new Int32Array(cap);
      starts.set(this.starts);
      const ends = new Int32Array(cap);
      ends.set(this.ends);
      this.starts = starts;
      this.ends = ends;
    }
    const room = s.length * 3;
    if (this.used + room > this.bytes.length) {
      // Not zeroed: only bytes written are ever read, and pages never written are never touched.
      const bytes = Buffer.allocUnsafe(Math.max(1 << 16, (this.used + room) * 2));
      this.bytes.copy(bytes, 0, 0, this.used);
      this.bytes = bytes;
    }
    this.starts[this.n] = this.used;
    this.used += this.bytes.write(s, this.used, 'utf8');
    this.ends[this.n] = this.used;
    if (column !== undefined) {
      this.last[column] = s;
      this.lastId[column] = this.n;
    }
    return this.n++;
  }

  get(id: number): string | undefined {
    return id < 0 ? undefined : this.bytes.toString('utf8', this.starts[id], this.ends[id]);
  }
}

/**
 * Named lists of texts (nft chains and their rule lines, maps and their elements), the texts in one Texts. A list's
 * lines are ids start..start+count: `nft list ruleset` prints a chain's lines together. A list added to again after
 * another has its lines moved to the end first, so it stays one run.
 */
export class TextLists {
  private readonly texts = new Texts();
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private start: number[] = [];
  private size: number[] = [];
  private current = -1;
  /** Lines in all lists. */
  items = 0;

  /** A list, empty if new; `push` adds to it. Its name as kept here (the dump's own copy, never a slice of a line). */
  add(name: string): string {
    const id = this.ids.get(name);
    if (id !== undefined) return this.names[id]!;
    const own = detach(name);
    this.ids.set(own, this.start.length);
    this.names.push(own);
    this.start.push(this.texts.count);
    this.size.push(0);
    return own;
  }

  push(name: string, text: string): void {
    this.add(name);
    const id = this.ids.get(name)!;
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
    return this.ids.has(name);
  }

  /** The list's name as kept here (not a slice of a caller's line, which would keep the line alive), if added. */
  key(name: string): string | undefined {
    const id = this.ids.get(name);
    return id === undefined ? undefined : this.names[id];
  }

  /** The list's texts, made for the caller; undefined for a list never added. */
  get(name: string): string[] | undefined {
    const id = this.ids.get(name);
    if (id === undefined) return undefined;
    const from = this.start[id]!;
    const n = this.size[id]!;
    const out: string[] = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = this.texts.get(from + i)!;
    return out;
  }

  keys(): IterableIterator<string> {
    return this.ids.keys();
  }

  /** Lists added. */
  get lists(): number {
    return this.ids.size;
  }
}
