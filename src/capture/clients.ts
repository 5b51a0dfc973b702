/**
 * The matcher's tables, per client address: its queries by what identifies them on the wire (port and ID, then type
 * and name), and by question name (the latest of each type, A and AAAA just sent, truncated answers awaiting TCP).
 *
 * Keys are numbers and the name the packet carries, never strings built per packet: a capture's every message is
 * looked up here, and hashing a fresh `client|port|id|type|name` string for each cost more than all the rest.
 */
import type { Tally } from './client-table.js';

/** What the tables need of a query. */
export interface Indexed {
  qname: string;
  qtype: number;
  /** port * 65536 + ID. */
  wire: number;
}

/** Queries by port and ID; more than one under a key when one port and ID carry two questions. */
export class WireIndex<T extends Indexed> {
  /** Made on first use: most clients of a busy node have nothing waiting most of the time. */
  private map: Map<number, T | T[]> | undefined;
  private get m(): Map<number, T | T[]> {
    this.map ??= new Map();
    return this.map;
  }

  get empty(): boolean {
    return this.map === undefined || this.map.size === 0;
  }

  get(wire: number, qtype: number, qname: string): T | undefined {
    if (this.map === undefined) return undefined;
    const v = this.m.get(wire);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return v.qtype === qtype && v.qname === qname ? v : undefined;
    return v.find((q) => q.qtype === qtype && q.qname === qname);
  }

  /** Add `q`, in place of a query of the same question under its key. */
  set(q: T): void {
    const v = this.m.get(q.wire);
    if (v === undefined || (!Array.isArray(v) && v.qtype === q.qtype && v.qname === q.qname)) this.m.set(q.wire, q);
    else if (!Array.isArray(v)) this.m.set(q.wire, [v, q]);
    else {
      const i = v.findIndex((x) => x.qtype === q.qtype && x.qname === q.qname);
      if (i >= 0) v[i] = q;
      else v.push(q);
    }
  }

  /** Remove `q` (only that query: another under the same key and question stays). */
  delete(q: T): void {
    if (this.map === undefined) return;
    const v = this.m.get(q.wire);
    if (v === q) this.m.delete(q.wire);
    else if (Array.isArray(v)) {
      const rest = v.filter((x) => x !== q);
      if (rest.length === 0) this.m.delete(q.wire);
      else this.m.set(q.wire, rest.length === 1 ? rest[0]! : rest);
    }
  }
}

/** One question name of one client. */
export interface NameState<T> {
  /** The latest query of each type: a query of the same type from a new port or ID may be its resend. */
  latest: T[];
  /** The latest A or AAAA query of each source port: the other type from the same port pairs with it. */
  lookups: Map<number, T>;
  /** Queries whose UDP answer was truncated, awaiting a TCP query of the same type. */
  truncated: T[];
}

export interface ClientState<T> {
  address: string;
  /** Its counts: its row in the client table. */
  group: Tally;
  /** Queries waiting or just answered. */
  wire: WireIndex<T & Indexed>;
  /** Queries given up lately: an answer to one is late. */
  given: WireIndex<T & Indexed>;
  /** Made on first use (the client's state goes when idle). */
  names: Map<string, NameState<T>> | undefined;
}

/** A client's matching state, made when it asks and let go when nothing of it is waiting (its counts stay in the table). */
export function newClient<T extends Indexed>(address: string, group: Tally): ClientState<T> {
  return { address, group, wire: new WireIndex<T>(), given: new WireIndex<T>(), names: undefined };
}

/** Nothing of the client's is waiting, answered lately, given up lately, or named. */
export const idle = <T>(c: ClientState<T>): boolean => c.wire.empty && c.given.empty && (c.names === undefined || c.names.size === 0);

/** The client's state of `qname`, made on first use. */
export function nameState<T>(c: ClientState<T>, qname: string): NameState<T> {
  c.names ??= new Map();
  let ns = c.names.get(qname);
  if (ns === undefined) {
    ns = { latest: [], lookups: new Map(), truncated: [] };
    c.names.set(qname, ns);
  }
  return ns;
}

/** Remove `q` from a list, in place. */
export function without<T>(list: T[], q: T): void {
  const i = list.indexOf(q);
  if (i >= 0) list.splice(i, 1);
}

/** Forget the name's state once nothing in it is waiting. */
export function dropIfEmpty<T>(c: ClientState<T>, qname: string, ns: NameState<T>): void {
  if (ns.latest.length === 0 && ns.lookups.size === 0 && ns.truncated.length === 0 && c.names?.get(qname) === ns) {
    c.names.delete(qname);
  }
}
