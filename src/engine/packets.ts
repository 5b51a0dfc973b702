/**
 * What goes on the wire: each query's template, and the buffers a slot sends from. Each slot keeps one exact-length
 * copy of each template: a send patches the ID in place and hands Node the whole buffer (no offset/length: no slice
 * per packet). With very many templates, one buffer per slot is reused.
 */
import type { QueryTemplate } from '../dns/wire.js';
import type { QueryList } from './queries.js';

export class Packets {
  /** One buffer per slot and template (else one per slot, refilled). */
  readonly perTemplate: boolean;
  private readonly made: QueryTemplate[] | undefined;
  private readonly bufs: Array<Buffer | undefined>;
  private readonly n: number;
  private readonly maxLen: number;

  constructor(
    private readonly list: QueryList,
    slots: number,
  ) {
    this.n = list.count;
    this.maxLen = list.maxLength;
    // Up to 65,536 queries each has its template object, made once; a longer list makes one at each use, from the
    // packed list (a few allocations per query, where an object and a Buffer per line would take gigabytes).
    this.made = this.n <= 65_536 ? Array.from({ length: this.n }, (_, i) => list.template(i)) : undefined;
    this.perTemplate = this.n * slots <= 262_144;
    this.bufs = new Array<Buffer | undefined>(this.perTemplate ? slots * this.n : slots).fill(undefined);
  }

  template(qi: number): QueryTemplate {
    return this.made !== undefined ? this.made[qi]! : this.list.template(qi);
  }

  /** The buffer a new query of template `qi` goes out from on `slot`, holding that template. */
  bufferFor(slot: number, qi: number): Buffer {
    const k = this.perTemplate ? slot * this.n + qi : slot;
    let b = this.bufs[k];
    if (this.perTemplate) {
      if (b === undefined) this.bufs[k] = b = Buffer.from(this.template(qi).bytes);
      return b;
    }
    const t = this.template(qi);
    b ??= this.bufs[k] = Buffer.alloc(this.maxLen);
    t.bytes.copy(b, 0, 0, t.bytes.length);
    return b;
  }

  /** The buffer `slot` last sent template `qi` from, its ID patched in. */
  sent(slot: number, qi: number): Buffer {
    return this.bufs[this.perTemplate ? slot * this.n + qi : slot]!;
  }
}
