/**
 * CoreDNS's own metrics (its /metrics page, port 9153), read before and after doctor's probes: what CoreDNS saw of
 * them splits "CoreDNS overloaded" (max_concurrent rejects, panics) from "its upstream slow or failing" (the forward
 * plugin's SERVFAILs and latency). Names of CoreDNS 1.11+ (coredns_proxy_*) and of older releases (coredns_forward_*)
 * are both read.
 *
 * The text format's sample lines are parsed here: the npm parsers tried (parse-prometheus-text-format 1.1.1,
 * exposition 1.2.0) merge the series of a labelled histogram into one and drop its labels, sum or count, which is
 * every histogram CoreDNS exports.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;

/** One label set: name="value" pairs, the value with \\, \" and \n escapes. Undefined when malformed. */
function parseLabels(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (i >= text.length) break;
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(text.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    let v = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) return undefined;
      i++;
      if (c === '"') break;
      if (c === '\\') {
        const e = text[i++];
        v += e === 'n' ? '\n' : (e ?? '');
      } else v += c;
    }
    out[m[1]!] = v;
  }
  return out;
}

/** Every sample line of a Prometheus text page; comments, blank and malformed lines are skipped. */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const labels = m[2] === undefined ? {} : parseLabels(m[2]);
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (labels === undefined || Number.isNaN(value)) continue;
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** What doctor reads of CoreDNS: counters, each summed over its series. */
export interface CorednsFigures {
  version: string | null;
  requests: number;
  /** Responses by rcode, all plugins. */
  responses: Record<string, number>;
  /** Forwarded requests by the upstream's rcode, with their summed duration (seconds). */
  forwarded: number;
  forwardedByRcode: Record<string, number>;
  forwardSeconds: number;
  maxConcurrentRejects: number;
  panics: number;
  cacheHits: number;
  cacheMisses: number;
}

export function corednsFigures(samples: readonly Sample[]): CorednsFigures {
  const sum = (name: string, where: (l: Record<string, string>) => boolean = () => true): number =>
    samples.reduce((n, s) => (s.name === name && where(s.labels) ? n + s.value : n), 0);
  const byLabel = (name: string, label: string, where: (l: Record<string, string>) => boolean = () => true): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const s of samples) if (s.name === name && where(s.labels)) out[s.labels[label] ?? ''] = (out[s.labels[label] ?? ''] ?? 0) + s.value;
    return out;
  };
  const forward = (l: Record<string, string>): boolean => l['proxy_name'] === 'forward';
  // 1.11+: coredns_proxy_request_duration_seconds{proxy_name="forward",rcode,to}; before: coredns_forward_request_duration_seconds{rcode,to}.
  const proxy = samples.some((s) => s.name === 'coredns_proxy_request_duration_seconds_count');
  const forwardedByRcode = proxy ? byLabel('coredns_proxy_request_duration_seconds_count', 'rcode', forward) : byLabel('coredns_forward_request_duration_seconds_count', 'rcode');
  const forwardSeconds = proxy ? sum('coredns_proxy_request_duration_seconds_sum', forward) : sum('coredns_forward_request_duration_seconds_sum');
  return {
    version: samples.find((s) => s.name === 'coredns_build_info')?.labels['version'] ?? null,
    requests: sum('coredns_dns_requests_total'),
    responses: byLabel('coredns_dns_responses_total', 'rcode'),
    forwarded: Object.values(forwardedByRcode).reduce((a, b) => a + b, 0),
    forwardedByRcode,
    forwardSeconds,
    maxConcurrentRejects: sum('coredns_forward_max_concurrent_rejects_total'),
    panics: sum('coredns_panics_total'),
    cacheHits: sum('coredns_cache_hits_total'),
    cacheMisses: sum('coredns_cache_misses_total'),
  };
}

/** What moved between two readings of one CoreDNS (a counter that fell: the pod restarted, and the delta is null). */
export interface CorednsDelta {
  url: string;
  version: string | null;
  requests: number;
  forwarded: number;
  forwardServfail: number;
  /** Mean seconds a forwarded request took during the interval; null with none forwarded. */
  forwardMeanSeconds: number | null;
  maxConcurrentRejects: number;
  panics: number;
  responsesServfail: number;
}

export function corednsDelta(url: string, before: CorednsFigures, after: CorednsFigures): CorednsDelta | null {
  const d = (a: number, b: number): number => a - b;
  if (after.requests < before.requests || after.panics < before.panics) return null;
  const forwarded = d(after.forwarded, before.forwarded);
  return {
    url,
    version: after.version,
    requests: d(after.requests, before.requests),
    forwarded,
    forwardServfail: d(after.forwardedByRcode['SERVFAIL'] ?? 0, before.forwardedByRcode['SERVFAIL'] ?? 0),
    forwardMeanSeconds: forwarded > 0 ? Number((d(after.forwardSeconds, before.forwardSeconds) / forwarded).toFixed(4)) : null,
    maxConcurrentRejects: d(after.maxConcurrentRejects, before.maxConcurrentRejects),
    panics: d(after.panics, before.panics),
    responsesServfail: d(after.responses['SERVFAIL'] ?? 0, before.responses['SERVFAIL'] ?? 0),
  };
}

const MAX_PAGE = 8 << 20;

/** GET a /metrics page: bounded in time and size; the reason in one phrase when it cannot be had. */
export async function fetchCorednsMetrics(url: string, timeoutMs = 2000): Promise<{ figures: CorednsFigures } | { error: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!res.ok) return { error: `${url}: HTTP ${res.status}` };
    // Read up to the cap and no further, whatever the page says of its length.
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = res.body?.getReader();
    for (;;) {
      const r = reader ? await reader.read() : { done: true as const, value: undefined };
      if (r.done) break;
      size += r.value.byteLength;
      if (size > MAX_PAGE) {
        await reader?.cancel();
        return { error: `${url}: page over ${MAX_PAGE >> 20} MiB` };
      }
      chunks.push(r.value);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const samples = parseSamples(text);
    if (!samples.some((s) => s.name.startsWith('coredns_'))) return { error: `${url}: no coredns_ metrics on that page` };
    return { figures: corednsFigures(samples) };
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string; message?: string }; message?: string };
    return { error: `${url}: ${e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err))}` };
  }
}
