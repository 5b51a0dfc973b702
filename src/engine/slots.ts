/**
 * The engine's query slots, struct-of-arrays: one entry per query that may be in flight (-c), each field a typed
 * array indexed by slot, and a stack of the free ones. A slot holds its query from launch until the query ends AND
 * its send has completed, so its packet buffer is never rewritten while the kernel may still read it.
 */
import type net from 'node:net';

/** No slot, or no ID in `id`. */
export const FREE = -1;
// state
export const IDLE = 0;
export const UDP = 1;
export const TCP = 2;

export class Slots {
  /** IDLE, UDP (waiting for a datagram) or TCP (retried over its own connection). */
  readonly state: Uint8Array;
  /** 1 while the slot's send is queued in the socket; the slot is not reused before it completes. */
  readonly sendPending: Uint8Array;
  readonly id: Int32Array;
  /** Index of the UDP socket it was sent on. */
  readonly sock: Int32Array;
  /** Index of its query in the list. */
  readonly query: Int32Array;
  /** Scheduled time, ms: where latency counts from. */
  readonly start: Float64Array;
  /** Send time of the current attempt, ms: where the timeout counts from. */
  readonly sent: Float64Array;
  /** The TCP retry's connection. */
  readonly conn: Array<net.Socket | undefined>;
  /** Bumped when the slot's query ends, so a late TCP callback knows it is no longer the slot's. */
  readonly gen: Uint32Array;
  private readonly freeStack: Int32Array;
  private top = 0;

  constructor(readonly size: number) {
    this.state = new Uint8Array(size);
    this.sendPending = new Uint8Array(size);
    this.id = new Int32Array(size).fill(FREE);
    this.sock = new Int32Array(size);
    this.query = new Int32Array(size);
    this.start = new Float64Array(size);
    this.sent = new Float64Array(size);
    this.conn = new Array<net.Socket | undefined>(size).fill(undefined);
    this.gen = new Uint32Array(size);
    this.freeStack = new Int32Array(size);
    for (let i = size - 1; i >= 0; i--) this.freeStack[this.top++] = i;
  }

  /** Free slots. */
  get free(): number {
    return this.top;
  }

  /** A free slot (the caller checks `free` first). */
  take(): number {
    return this.freeStack[--this.top]!;
  }

  /** Back on the free stack. */
  give(slot: number): void {
    this.freeStack[this.top++] = slot;
  }

  /**
   * The slot's query has ended: mark it idle, close its TCP connection, and free it unless its send is still
   * queued (then `sendDone` frees it). The caller returns the ID.
   */
  clear(slot: number): void {
    this.id[slot] = FREE;
    this.state[slot] = IDLE;
    this.gen[slot] = (this.gen[slot]! + 1) >>> 0;
    const conn = this.conn[slot];
    if (conn !== undefined) {
      this.conn[slot] = undefined;
      conn.destroy();
    }
    if (this.sendPending[slot] === 0) this.give(slot);
  }

  /** The UDP query sent longest ago on socket `sock`, or FREE. */
  oldestOn(sock: number): number {
    let oldest = FREE;
    for (let i = 0; i < this.size; i++) {
      if (this.state[i] === UDP && this.sock[i] === sock && (oldest === FREE || this.sent[i]! < this.sent[oldest]!)) oldest = i;
    }
    return oldest;
  }

  /** Close every TCP retry still open (the end of a run). */
  closeConnections(): void {
    for (let i = 0; i < this.size; i++) {
      this.conn[i]?.destroy();
      this.conn[i] = undefined;
    }
  }
}
