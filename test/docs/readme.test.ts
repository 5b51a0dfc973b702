/**
 * README and docs/ tell the truth: every finding code the code can emit, every flag of every command and every JSON key
 * is in them; doctor's table is its rules table; README stays short and links every document; no document tells the
 * project's history.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { CATALOGUE } from '../../src/findings.js';
import { RULES } from '../../src/doctor/rules.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readmeOnly = readFileSync(join(root, 'README.md'), 'utf8');
const DOCS = ['doctor.md', 'commands.md', 'fleet.md', 'performance.md', 'development.md'];
const docs = Object.fromEntries(DOCS.map((f) => [f, readFileSync(join(root, 'docs', f), 'utf8')]));
/** What a user can read: README and docs/ together. */
const readme = [readmeOnly, ...Object.values(docs)].join('\n');
/** errno names that appear as `code:` in error objects, not findings. */
const ERRNO = new Set(['ECONNREFUSED', 'EISDIR']);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('README', () => {
  it('lists every finding code of the catalogue, and the catalogue has every code the sources emit', () => {
    const codes = Object.keys(CATALOGUE);
    const missing = codes.filter((c) => !readme.includes(`\`${c}\``)).sort();
    expect(missing).toEqual([]);
    const emitted = new Set<string>();
    for (const file of sources(join(root, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/code: '([A-Z][A-Z_]+)'/g)) if (!ERRNO.has(m[1]!)) emitted.add(m[1]!);
    }
    expect([...emitted].filter((c) => !codes.includes(c))).toEqual([]);
  });

  it('lists every flag of every command', async () => {
    const missing: string[] = [];
    for (const cmd of ['dnsbench', 'serve', 'resolv', 'conntrack', 'svc', 'doctor', 'merge', 'watch', 'drops']) {
      const help = await run(['help', cmd]);
      expect(help.exitCode).toBe(0);
      // Only the Options section: the examples may mention other tools' flags.
      const options = help.stdout.slice(help.stdout.indexOf('Options:'), help.stdout.search(/\n(Examples|Exit codes|Without)/));
      for (const m of options.matchAll(/(?:^|\s)(--[a-z][a-z-]+)/g)) {
        const flag = m[1]!;
        if (['--help', '--json', '--no-color', '--debug'].includes(flag)) continue;
        if (!readme.includes(`\`${flag}`)) missing.push(`${cmd} ${flag}`);
      }
    }
    expect([...new Set(missing)]).toEqual([]);
  });
});

describe('README: the input caps', () => {
  it('states each cap as the code has it', async () => {
    const { LIMITS } = await import('../../src/input.js');
    const text = docs['commands.md']!;
    const line = text.slice(text.indexOf('Inputs are capped'), text.indexOf('Inputs are capped') + 400).replace(/\s+/g, ' ');
    const said: Record<keyof typeof LIMITS, RegExp> = {
      conntrack: /conntrack's input (\d+) MiB/, svc: /svc's dumps (\d+) MiB/, resolv: /a resolv\.conf (\d+) MiB/, queries: /`--queries` file (\d+) MiB/, merge: /merge's documents (\d+) MiB/, pods: /watch's `--pods` (\d+) MiB/,
    } as Record<keyof typeof LIMITS, RegExp>;
    for (const [k, v] of Object.entries(LIMITS)) {
      const re = said[k as keyof typeof LIMITS];
      if (re === undefined) continue;
      expect(Number(re.exec(line)?.[1]), k).toBe(v / (1 << 20));
    }
  });
});

describe('README: how doctor decides', () => {
  it('its table is the rules table: every code in the verdict\'s order, from where it comes, and the catalogue\'s rule', () => {
    const rows = [...docs['doctor.md']!.matchAll(/^\| (\d+) \| `([A-Z_]+)` \| (doctor|resolv|conntrack) \| (.*) \|$/gm)].map((m) => ({ rank: Number(m[1]), code: m[2]!, from: m[3]!, rule: m[4]! }));
    const want = RULES.flatMap((r) => r.codes.map((code) => ({ code, from: r.from, rule: CATALOGUE[code].rule }))).map((r, i) => ({ rank: i + 1, ...r }));
    expect(rows).toEqual(want);
  });
});

describe('README JSON sections', () => {
  it('name every top-level key of every command\'s --json document', async () => {
    const { startResponder } = await import('../helpers/responders.js');
    const r = await startResponder();
    const docs: Array<[string, string[], string?]> = [
      ['dnsbench', ['dnsbench', '--json', '--server', '127.0.0.1', '-p', String(r.udpPort), '-n', '5']],
      ['dnsbench --resolv', ['dnsbench', '--json', '--resolv', '-', '-p', String(r.udpPort), '-n', '2'], 'nameserver 127.0.0.1\n'],
      ['conntrack', ['conntrack', '--json'], 'cpu=0 found=0 insert_failed=1 drop=0\n'],
      ['svc', ['svc', '--json'], readFileSync(join(root, 'test/fixtures/svc/iptables-save-overall.txt'), 'utf8')],
      ['resolv', ['resolv', '--json', '--file', '-', 'google.com'], 'nameserver 10.96.0.10\n'],
      ['merge', ['merge', '--json'], JSON.stringify({ schema: 'k8sdiag.conntrack/1', host: 'a', counters: { drop: 1 }, findings: [] })],
      ['doctor', ['doctor', '--json', '--resolv', '-', '-p', String(r.udpPort), '--budget', '5'], 'nameserver 127.0.0.1\noptions timeout:1\n'],
      ['watch', ['watch', '--json', '--pcap', join(root, 'test/fixtures/capture/glibc-sll2.pcap')]],
    ];
    const missing: string[] = [];
    for (const [label, args, input] of docs) {
      const res = await run(args, input !== undefined ? { input } : {});
      const doc = JSON.parse(res.stdout) as Record<string, unknown>;
      for (const k of Object.keys(doc)) if (!readme.includes(`\`${k}\``)) missing.push(`${label}: ${k}`);
    }
    expect(missing).toEqual([]);
  });
});

describe('README and docs/', () => {
  it('README is short, and links every document of docs/, each of which exists', () => {
    expect(readmeOnly.split('\n').length).toBeLessThanOrEqual(300);
    const links = [...readmeOnly.matchAll(/\]\((docs\/[a-z-]+\.md)\)/g)].map((m) => m[1]!);
    expect([...new Set(links)].sort()).toEqual(DOCS.map((f) => `docs/${f}`).sort());
    expect(readdirSync(join(root, 'docs')).sort()).toEqual([...DOCS].sort());
  });

  it('tell what the product is, not how it was made', () => {
    const history = /\bsessions?\b(?! affinity)|\bissue #\d|\bbefore this work\b|\bthis machine\b|\bGitHub access\b/i;
    for (const [name, text] of [['README.md', readmeOnly], ...Object.entries(docs).map(([f, t]) => [`docs/${f}`, t])] as Array<[string, string]>) {
      const lines = text.split('\n').filter((l) => history.test(l) && !/`[A-Z_]+` \| doctor \|/.test(l));
      expect(lines, name).toEqual([]);
    }
  });
});

describe('README and docs/ name only what exists', () => {
  it('every finding code they name is in the catalogue; every flag they name is k8sdiag\'s or another tool\'s, said so', async () => {
    // Upper-case names that are not finding codes: environment variables, capabilities, a record type's spelling, the
    // kernel's drop reasons.
    const notCodes = new Set(['NO_SOCKET', 'NETFILTER_DROP', 'QUEUE_PURGE', 'SOCKET_CLOSE', 'NO_COLOR', 'NODE_NAME', 'LOCALDOMAIN', 'RES_OPTIONS', 'NET_ADMIN', 'NET_RAW', 'SYSLOG', 'BENCH_SECONDS', 'BENCH_ROUNDS', 'BENCH_ONLY', 'TYPE65', 'K8SDIAG_UDP', 'CI']);
    const named = [...readme.matchAll(/`([A-Z][A-Z0-9_]{2,})`/g)].map((m) => m[1]!);
    expect(named.filter((c) => !Object.hasOwn(CATALOGUE, c) && !notCodes.has(c))).toEqual([]);
    // Flags of other tools the docs quote: node's and V8's, kubectl's, iptables' statistic match, perf's, tcpdump's, conntrack's.
    const others = new Set(['--immediate-mode', '--cpu-prof', '--max-semi-space-size', '--perf-basic-prof', '--single-threaded', '--single-threaded-gc', '--test-udp-no-try-send', '--all-user', '--prefix', '--profile', '--target', '--image', '--custom', '--mode', '--probability', '--dport']);
    const ours = new Set<string>(['--version', '--help']);
    for (const cmd of ['', 'dnsbench', 'serve', 'resolv', 'conntrack', 'svc', 'doctor', 'merge', 'watch', 'drops']) {
      const help = (await run(cmd === '' ? ['--help'] : ['help', cmd])).stdout;
      for (const m of help.matchAll(/(?:^|[\s,])(--[a-z][a-z0-9-]+)/g)) ours.add(m[1]!);
    }
    // Anywhere: in prose, in backticks, in the examples' code blocks.
    const flags = [...readme.matchAll(/(?:^|[\s(`[,])(--[a-z][a-z0-9-]+)/g)].map((m) => m[1]!);
    expect([...new Set(flags.filter((f) => !ours.has(f) && !others.has(f)))]).toEqual([]);
  });
});

describe('docs: the flags\' bounds', () => {
  it('docs/commands.md lists every bounded flag with the bounds its parser enforces, and help says them', async () => {
    const { buildProgram } = await import('../../src/cli.js');
    const text = docs['commands.md']!;
    const rows = [...text.matchAll(/^\| (\w+) \| `([^`]+)` \| ([^|]+) \|$/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]!.trim()}`);
    const want: string[] = [];
    for (const c of buildProgram().commands) {
      for (const o of c.options) {
        const parse = (o as { parseArg?: (v: string) => unknown }).parseArg;
        const b = (parse as { bounds?: { whole: boolean; min: number; max: number } } | undefined)?.bounds;
        if (b === undefined || parse === undefined) continue;
        const said = b.whole ? `${b.min}-${b.max}` : `> 0, at most ${b.max}`;
        want.push(`${c.name()} ${o.flags.replace(/ <.*/, '')} ${said}`);
        // The bound is the parser's: the largest value passes, one past it is refused.
        expect(() => parse(String(b.max))).not.toThrow();
        expect(() => parse(String(b.max + 1)), `${c.name()} ${o.long}`).toThrow(new RegExp(o.long!));
        expect(o.description).toContain(`(${said})`);
      }
    }
    expect(want.length).toBeGreaterThan(15);
    expect(rows).toEqual(want);
  });
});
