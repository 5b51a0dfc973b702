/**
 * merge's sums of `drops` documents: each one node's run, so its drops and flows add. The places packets died add
 * over nodes (each with the nodes it was seen on); conntrack's endpoints add over the nodes whose flows went to them,
 * ranked by the share of their flows never replied, each tested against the others together.
 */
import { fisherGreater, isWholeCount } from '../stats/index.js';
import { isRecord, num } from './merge-fields.js';

/** Places and endpoints kept apart; past these, the rest are counted, not listed. */
const MAX_KEPT = 10_000;

export interface MergedDropPlace {
  reason: string;
  location: string;
  endpoint: string;
  direction: string;
  transport: string;
  count: number;
  nodes: number;
}

export interface MergedFlowEndpoint {
  endpoint: string;
  flows: number;
  replied: number;
  unreplied: number;
  nodes: number;
  /** unreplied / flows. */
  unrepliedRate: number;
  /** Fisher's exact test of its unreplied flows against the other endpoints' together (one-sided). */
  p: number | null;
}

export interface MergedDrops {
  /** DNS packets the kernel dropped, over the documents whose kernel drops were traced. */
  drops: number;
  leftOut: number;
  /** Documents whose kernel drops were traced, and whose conntrack events were read. */
  traced: number;
  withConntrack: number;
  byPlace: MergedDropPlace[];
  flows: { flows: number; replied: number; unreplied: number; byEndpoint: MergedFlowEndpoint[] } | null;
  /** Places and endpoints past the bound, counted, not listed. */
  notListed: number;
}

const PLACE_FIELDS = ['reason', 'location', 'endpoint', 'direction', 'transport'] as const;

/** Why a drops document cannot be merged, or undefined. */
export function dropsProblem(d: Record<string, unknown>): string | undefined {
  for (const k of ['drops', 'leftOut'] as const) if (!isWholeCount(d[k])) return `${k} is not a count (a whole number from 0 to 2^53)`;
  if (!Array.isArray(d['byPlace'])) return 'byPlace is not a list';
  for (const p of d['byPlace'] as unknown[]) {
    if (!isRecord(p) || !PLACE_FIELDS.every((k) => typeof p[k] === 'string') || !isWholeCount(p['count'])) return 'a place without its reason, location, endpoint, direction, transport and count';
  }
  const ct = d['conntrack'];
  if (ct !== undefined && ct !== null) {
    if (!isRecord(ct) || !['flows', 'replied', 'unreplied'].every((k) => isWholeCount(ct[k])) || !Array.isArray(ct['byEndpoint'])) return 'conntrack is not flows, replied, unreplied and byEndpoint';
    for (const e of ct['byEndpoint'] as unknown[]) {
      if (!isRecord(e) || typeof e['endpoint'] !== 'string' || !['flows', 'replied', 'unreplied'].every((k) => isWholeCount(e[k]))) return "a conntrack endpoint without its flows, replied and unreplied";
    }
  }
  return undefined;
}

export class DropsSum {
  private drops = 0;
  private leftOut = 0;
  private traced = 0;
  private withConntrack = 0;
  private flows = { flows: 0, replied: 0, unreplied: 0 };
  private readonly places = new Map<string, MergedDropPlace & { hosts: Set<string> }>();
  private readonly ends = new Map<string, { flows: number; replied: number; unreplied: number; hosts: Set<string> }>();
  private notListed = 0;

  add(d: Record<string, unknown>): void {
    const host = String(d['host']);
    const sources = isRecord(d['sources']) ? d['sources'] : {};
    // A document from before conntrack's events has no `sources`: its drops were traced.
    if (sources['bpf'] === undefined || sources['bpf'] === null) {
      this.traced++;
      this.drops += num(d['drops']);
      this.leftOut += num(d['leftOut']);
    }
    for (const raw of d['byPlace'] as Array<Record<string, unknown>>) {
      const key = PLACE_FIELDS.map((k) => String(raw[k])).join('|');
      let p = this.places.get(key);
      if (p === undefined) {
        if (this.places.size >= MAX_KEPT) {
          this.notListed++;
          continue;
        }
        p = { reason: String(raw['reason']), location: String(raw['location']), endpoint: String(raw['endpoint']), direction: String(raw['direction']), transport: String(raw['transport']), count: 0, nodes: 0, hosts: new Set() };
        this.places.set(key, p);
      }
      p.count += num(raw['count']);
      p.hosts.add(host);
    }
    const ct = d['conntrack'];
    if (!isRecord(ct)) return;
    this.withConntrack++;
    for (const k of ['flows', 'replied', 'unreplied'] as const) this.flows[k] += num(ct[k]);
    for (const raw of ct['byEndpoint'] as Array<Record<string, unknown>>) {
      const key = String(raw['endpoint']);
      let e = this.ends.get(key);
      if (e === undefined) {
        if (this.ends.size >= MAX_KEPT) {
          this.notListed++;
          continue;
        }
        e = { flows: 0, replied: 0, unreplied: 0, hosts: new Set() };
        this.ends.set(key, e);
      }
      e.flows += num(raw['flows']);
      e.replied += num(raw['replied']);
      e.unreplied += num(raw['unreplied']);
      e.hosts.add(host);
    }
  }

  result(): MergedDrops {
    const byPlace = [...this.places.values()].map(({ hosts, ...p }) => ({ ...p, nodes: hosts.size })).sort((a, b) => b.count - a.count || a.endpoint.localeCompare(b.endpoint));
    const all = [...this.ends];
    const totalFlows = all.reduce((n, [, e]) => n + e.flows, 0);
    const totalLost = all.reduce((n, [, e]) => n + e.unreplied, 0);
    const byEndpoint = all
      .map(([endpoint, e]): MergedFlowEndpoint => ({
        endpoint,
        flows: e.flows,
        replied: e.replied,
        unreplied: e.unreplied,
        nodes: e.hosts.size,
        unrepliedRate: e.flows > 0 ? Number((e.unreplied / e.flows).toFixed(6)) : 0,
        p: all.length >= 2 && e.unreplied > 0 && totalFlows - e.flows > 0 ? Number(fisherGreater(e.unreplied, e.flows, totalLost - e.unreplied, totalFlows - e.flows).toPrecision(3)) : null,
      }))
      .sort((a, b) => b.unrepliedRate - a.unrepliedRate || b.flows - a.flows || a.endpoint.localeCompare(b.endpoint));
    return {
      drops: this.drops,
      leftOut: this.leftOut,
      traced: this.traced,
      withConntrack: this.withConntrack,
      byPlace,
      flows: this.withConntrack > 0 ? { ...this.flows, byEndpoint } : null,
      notListed: this.notListed,
    };
  }
}
