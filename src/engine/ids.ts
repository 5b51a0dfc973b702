/**
 * DNS message IDs for queries in flight, as dnsperf and RFC 5452 want them: every ID free at most once, an ID that
 * comes back (answered) reused as late as possible (first in, first out over all 65,536), and the ID of a query that
 * timed out kept out for a while (quarantine), so a late or duplicated reply can never complete a later query.
 */

export const ID_SPACE = 0x10000;
/** No ID: none free. */
export const NO_ID = -1;

export class IdPool {
  /** Free IDs, oldest first: a ring of `count` from `head`. */
  private readonly ring = new Uint16Array(ID_SPACE);
  private head = 0;
  private count = ID_SPACE;
  /** Quarantined IDs in the order they went in, each until its time in `until`. */
  private readonly qRing = new Uint16Array(ID_SPACE);
  private qHead = 0;
  private qCount = 0;
  private readonly until = new Float64Array(ID_SPACE);

  /** `first`: where the ring starts (random by default, so runs do not all begin at the same ID). */
  constructor(
    private readonly quarantineMs: number,
    first: number = (Math.random() * ID_SPACE) | 0,
  ) {
    for (let k = 0; k < ID_SPACE; k++) this.ring[k] = (first + k) & 0xffff;
  }

  /** The free ID that has been free longest, or NO_ID. */
  take(): number {
    if (this.count === 0) return NO_ID;
    const id = this.ring[this.head]!;
    this.head = (this.head + 1) & 0xffff;
    this.count--;
    return id;
  }

  /** An answered query's ID, free again: it goes to the back. */
  give(id: number): void {
    this.ring[(this.head + this.count) & 0xffff] = id;
    this.count++;
  }

  /** A timed-out query's ID: kept out until `now` + the quarantine. */
  quarantine(id: number, now: number): void {
    this.until[id] = now + this.quarantineMs;
    this.qRing[(this.qHead + this.qCount) & 0xffff] = id;
    this.qCount++;
  }

  /** Quarantined IDs whose time is up go back to the free ring, in the order they went in. */
  release(now: number): void {
    while (this.qCount > 0 && this.until[this.qRing[this.qHead]!]! <= now) {
      this.give(this.qRing[this.qHead]!);
      this.qHead = (this.qHead + 1) & 0xffff;
      this.qCount--;
    }
  }

  /** Whether `id` is quarantined at `now` (a reply for it is late, not bogus). */
  quarantined(id: number, now: number): boolean {
    return this.until[id]! > now;
  }

  get free(): number {
    return this.count;
  }
}
