/**
 * The search list's cost in real traffic. A resolver whose name has fewer dots than `ndots` asks it with each search
 * domain first (`google.com.default.svc.cluster.local`, then `google.com.svc.cluster.local`, ...) and the name itself
 * last. The answers to those are NXDOMAIN; the client then asks the name they were built from. A query answered
 * NXDOMAIN whose name is the client's next name plus a suffix, asked within SEARCH_WINDOW_US, was a search-list name.
 *
 * Found by the first label: NXDOMAIN names wait under (client, first label) until the client asks a name with that
 * first label; then those that start with that name and a dot were its search names. Bounded: at most `max` names
 * wait, and they leave after SEARCH_WINDOW_US.
 */
import type { Tally } from './client-table.js';

/** A lookup's walk through its search list, with a resend or two on the way, ends within this. */
export const SEARCH_WINDOW_US = 30_000_000;

interface Waiting {
  name: string;
  tsUs: number;
  /** The groups the NXDOMAIN query counted in (all, client, server; its endpoint): they count it as a search-list query
   * once its name is known. */
  groups: readonly Tally[];
  endpoint: Tally;
}

export class SearchList {
  private readonly waiting = new Map<string, Waiting[]>();
  private size = 0;
  /** NXDOMAIN names not kept because the table was full. */
  overflow = 0;

  constructor(private readonly max: number) {}

  /** A query of `name` was answered NXDOMAIN: it may have been a search-list name. */
  nxdomain(client: string, name: string, tsUs: number, groups: readonly Tally[], endpoint: Tally): void {
    const dot = name.indexOf('.');
    if (dot < 0) return; // a single label is no name plus a search domain
    if (this.size >= this.max) {
      this.overflow++;
      return;
    }
    const key = `${client}|${name.slice(0, dot)}`;
    const list = this.waiting.get(key);
    const w: Waiting = { name, tsUs, groups, endpoint };
    if (list === undefined) this.waiting.set(key, [w]);
    else list.push(w);
    this.size++;
  }

  /** The client asks `name`: its NXDOMAIN names that were `name` plus a search domain count as search-list queries. */
  asked(client: string, name: string, tsUs: number): void {
    if (this.size === 0) return;
    const dot = name.indexOf('.');
    const key = `${client}|${dot < 0 ? name : name.slice(0, dot)}`;
    const list = this.waiting.get(key);
    if (list === undefined) return;
    const prefix = `${name}.`;
    let kept = 0;
    for (const w of list) {
      if (w.name.startsWith(prefix) && tsUs - w.tsUs <= SEARCH_WINDOW_US) {
        for (const g of w.groups) g.searchQueries++;
        w.endpoint.searchQueries++;
        this.size--;
      } else list[kept++] = w;
    }
    list.length = kept;
    if (kept === 0) this.waiting.delete(key);
  }

  /** Forget names that waited past the window: no name followed them (a name that does not exist, or another cause). */
  sweep(nowUs: number): void {
    for (const [key, list] of this.waiting) {
      let kept = 0;
      for (const w of list) if (nowUs - w.tsUs <= SEARCH_WINDOW_US) list[kept++] = w;
      this.size -= list.length - kept;
      list.length = kept;
      if (kept === 0) this.waiting.delete(key);
    }
  }
}
