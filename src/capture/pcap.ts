/**
 * A strict, streaming reader of packet captures: pcap (microsecond and nanosecond, either byte order) and pcapng
 * (sections of either byte order, interfaces with their own link types and time resolutions, enhanced, simple and
 * obsolete packet blocks, interface statistics). Bytes are fed as they arrive; every length is checked against the
 * block it sits in and against a cap before it is used, so a damaged capture ends with a reason, never a throw,
 * a hang or an allocation its lengths ask for.
 */

export interface CapturedPacket {
  /** Capture time, microseconds since the epoch. */
  tsUs: number;
  /** The link type of the interface (1 Ethernet, 113 Linux cooked, 276 Linux cooked v2, 101 raw IP, ...). */
  linkType: number;
  /** The bytes captured (at most the snap length). */
  data: Buffer;
  /** The packet's length on the wire. */
  origLen: number;
}

/** What the capture's own statistics say (pcapng interface statistics blocks): packets the interface or kernel dropped. */
export interface CaptureStats {
  ifDrops: number | null;
}

/** The largest record or block accepted: tcpdump's largest snap length (262,144) and room for a block's framing. */
export const MAX_RECORD = 262_144 + 1024;
/** pcapng blocks other than packets (section headers with long options) may be larger, within reason. */
const MAX_BLOCK = 1 << 20;

const PCAP_US = 0xa1b2c3d4;
const PCAP_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

interface Iface {
  linkType: number;
  snapLen: number;
  /** Units per second of its timestamps. */
  unitsPerSecond: number;
}

export class CaptureReader {
  private buf: Buffer = Buffer.alloc(0);
  private offset = 0; // bytes of the capture consumed before `buf`
  private format: 'unknown' | 'pcap' | 'pcapng' = 'unknown';
  private le = true;
  private pcapNs = false;
  private pcapLink = 0;
  private ifaces: Iface[] = [];
  /** Why reading stopped early (a damaged or cut capture), or undefined. */
  damaged: string | undefined;
  packets = 0;
  readonly stats: CaptureStats = { ifDrops: null };
  /** The latest drop count of each interface (each statistics block counts from the start). */
  private readonly drops = new Map<number, number>();

  constructor(private readonly onPacket: (p: CapturedPacket) => void) {}

  get formatName(): 'pcap' | 'pcapng' | 'unknown' {
    return this.format;
  }

  feed(chunk: Buffer): void {
    if (this.damaged !== undefined) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let p = 0;
    for (;;) {
      const used = this.step(p);
      if (used <= 0) break;
      p += used;
      if (this.damaged !== undefined) break;
    }
    this.offset += p;
    this.buf = p >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(p);
    // What is left is less than one record or block, which the checks above bound.
    if (this.buf.length > MAX_BLOCK + 64) this.damage('a record longer than any capture holds');
  }

  /** The end of the input: a partial record left over means the capture was cut. */
  end(): void {
    if (this.damaged !== undefined) return;
    if (this.format === 'unknown') this.damaged = this.buf.length === 0 && this.offset === 0 ? 'empty input: no capture' : 'not a pcap or pcapng capture';
    else if (this.buf.length > 0) this.damaged = `cut short: ${this.buf.length} bytes of a last record at byte ${this.offset}`;
  }

  /** Reading ends here for a reason outside the capture's own bytes (its gzip stream was damaged or cut). */
  stop(why: string): void {
    if (this.damaged === undefined) this.damaged = why;
  }

  /** Where in `buf` the record or block being read starts. */
  private at = 0;

  private damage(why: string): void {
    this.damaged = `${why} (at byte ${this.offset + this.at})`;
  }

  private u32(p: number): number {
    return this.le ? this.buf.readUInt32LE(p) : this.buf.readUInt32BE(p);
  }

  private u16(p: number): number {
    return this.le ? this.buf.readUInt16LE(p) : this.buf.readUInt16BE(p);
  }

  /** Read one header, record or block at `p`; the bytes it used, or 0 when more input is needed. */
  private step(p: number): number {
    this.at = p;
    const left = this.buf.length - p;
    if (this.format === 'unknown') {
      if (left < 4) return 0;
      const magicLE = this.buf.readUInt32LE(p);
      const magicBE = this.buf.readUInt32BE(p);
      if (magicLE === PCAPNG_SHB) {
        this.format = 'pcapng';
        return this.block(p);
      }
      if (left < 24) return 0;
      if (magicLE === PCAP_US || magicLE === PCAP_NS) this.le = true;
      else if (magicBE === PCAP_US || magicBE === PCAP_NS) this.le = false;
      else {
        this.damaged = 'not a pcap or pcapng capture (no capture magic number at its start)';
        return 0;
      }
      this.format = 'pcap';
      this.pcapNs = (this.le ? magicLE : magicBE) === PCAP_NS;
      this.pcapLink = this.u32(p + 20) & 0x03ff_ffff;
      return 24;
    }
    return this.format === 'pcap' ? this.pcapRecord(p, left) : this.block(p);
  }

  private pcapRecord(p: number, left: number): number {
    if (left < 16) return 0;
    const incl = this.u32(p + 8);
    const orig = this.u32(p + 12);
    if (incl > MAX_RECORD) {
      this.damage(`a record of ${incl} bytes, more than any snap length`);
      return 0;
    }
    if (left < 16 + incl) return 0;
    const sec = this.u32(p);
    const frac = this.u32(p + 4);
    if (frac >= (this.pcapNs ? 1e9 : 1e6)) {
      this.damage(`a timestamp fraction of ${frac}, past one second`);
      return 0;
    }
    this.packets++;
    this.onPacket({ tsUs: sec * 1e6 + (this.pcapNs ? frac / 1000 : frac), linkType: this.pcapLink, data: this.buf.subarray(p + 16, p + 16 + incl), origLen: orig });
    return 16 + incl;
  }

  private block(p: number): number {
    const left = this.buf.length - p;
    if (left < 12) return 0;
    let type = this.buf.readUInt32LE(p);
    if (type === PCAPNG_SHB) {
      // A new section: its byte order from its own magic; its interfaces start again.
      const bom = this.buf.readUInt32LE(p + 8);
      if (bom === BYTE_ORDER_MAGIC) this.le = true;
      else if (this.buf.readUInt32BE(p + 8) === BYTE_ORDER_MAGIC) this.le = false;
      else {
        this.damage('a pcapng section header without the byte-order magic');
        return 0;
      }
      // A major version other than 1 may lay its blocks out otherwise: reading stops there (RFC's rule for readers).
      if (left >= 16 && this.u16(p + 12) !== 1) {
        this.damage(`a pcapng section of version ${this.u16(p + 12)}.${this.u16(p + 14)}, which this reader does not know`);
        return 0;
      }
      this.ifaces = [];
    } else type = this.u32(p);
    const total = this.u32(p + 4);
    if (total < 12 || total % 4 !== 0 || total > MAX_BLOCK) {
      this.damage(`a pcapng block (type ${type}) of ${total} bytes`);
      return 0;
    }
    if (left < total) return 0;
    if (this.u32(p + total - 4) !== total) {
      this.damage(`a pcapng block (type ${type}) whose two lengths differ`);
      return 0;
    }
    const body = p + 8;
    const bodyLen = total - 12;
    switch (type) {
      case 1: // interface description
        if (bodyLen < 8) return this.bad(type);
        this.ifaces.push({ linkType: this.u16(body), snapLen: this.u32(body + 4), unitsPerSecond: this.tsResolution(body + 8, body + bodyLen) });
        break;
      case 6: {
        // enhanced packet
        if (bodyLen < 20) return this.bad(type);
        const iface = this.ifaces[this.u32(body)];
        const cap = this.u32(body + 12);
        if (iface === undefined) return this.bad(type, 'names an interface not described');
        if (cap > bodyLen - 20) return this.bad(type, `claims ${cap} captured bytes in ${bodyLen - 20}`);
        const units = this.u32(body + 4) * 4294967296 + this.u32(body + 8);
        this.emit(iface, units, body + 20, cap, this.u32(body + 16));
        break;
      }
      case 3: {
        // simple packet: the first interface, no timestamp
        if (bodyLen < 4) return this.bad(type);
        const iface = this.ifaces[0];
        if (iface === undefined) return this.bad(type, 'comes before any interface');
        const orig = this.u32(body);
        const cap = Math.min(orig, bodyLen - 4, iface.snapLen > 0 ? iface.snapLen : orig);
        this.emit(iface, 0, body + 4, cap, orig);
        break;
      }
      case 2: {
        // obsolete packet block
        if (bodyLen < 20) return this.bad(type);
        const iface = this.ifaces[this.u16(body)];
        const cap = this.u32(body + 12);
        if (iface === undefined) return this.bad(type, 'names an interface not described');
        if (cap > bodyLen - 20) return this.bad(type, `claims ${cap} captured bytes in ${bodyLen - 20}`);
        this.emit(iface, this.u32(body + 4) * 4294967296 + this.u32(body + 8), body + 20, cap, this.u32(body + 16));
        break;
      }
      case 5: // interface statistics: isb_ifdrop (option 5), since the capture began, per interface
        if (bodyLen < 12) return this.bad(type);
        this.statsOptions(this.u32(body), body + 12, body + bodyLen);
        break;
      default:
        break; // name resolution, custom and other blocks: not needed
    }
    return total;
  }

  private bad(type: number, why = 'is shorter than its fields'): number {
    this.damage(`a pcapng block of type ${type} ${why}`);
    return 0;
  }

  private emit(iface: Iface, units: number, from: number, cap: number, orig: number): void {
    this.packets++;
    this.onPacket({ tsUs: (units / iface.unitsPerSecond) * 1e6, linkType: iface.linkType, data: this.buf.subarray(from, from + cap), origLen: orig });
  }

  /** Walk options from `p` to `end`: each code, length, value padded to 4. */
  private *options(p: number, end: number): Generator<[number, number, number]> {
    while (p + 4 <= end) {
      const code = this.u16(p);
      const len = this.u16(p + 2);
      if (code === 0 || p + 4 + len > end) return;
      yield [code, p + 4, len];
      p += 4 + len + ((4 - (len % 4)) % 4);
    }
  }

  private tsResolution(p: number, end: number): number {
    for (const [code, at, len] of this.options(p, end)) {
      if (code !== 9 || len < 1) continue;
      const v = this.buf[at]!;
      const exp = v & 0x7f;
      if (exp > 60) return 1e6;
      return v & 0x80 ? 2 ** exp : 10 ** exp;
    }
    return 1e6;
  }

  private statsOptions(iface: number, p: number, end: number): void {
    for (const [code, at, len] of this.options(p, end)) {
      if (code !== 5 || len !== 8) continue;
      this.drops.set(iface, this.u32(at + (this.le ? 0 : 4)) + this.u32(at + (this.le ? 4 : 0)) * 4294967296);
      this.stats.ifDrops = [...this.drops.values()].reduce((a, b) => a + b, 0);
    }
  }
}
