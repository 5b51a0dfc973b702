#!/usr/bin/env node
// npm run bench: speed and memory of k8sdiag, as ratios against references
// measured in the same run on the same machine. Prints figures; asserts nothing.
//
// 1. dnsbench vs dnsperf, queries per second against dnsmasq on loopback,
//    alternating A B A B, both with 100 queries outstanding.
// 2. dnsbench peak RSS at 40k and 400k queries.
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(root, 'bin', 'k8sdiag.js');
const HOOK = join(root, 'bench', 'rss-hook.mjs');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

function need(cmd, pkg) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  if (r.error) {
    console.error(`bench: ${cmd} is not installed (apt-get install ${pkg})`);
    process.exit(2);
  }
}
need('dnsmasq', 'dnsmasq-base');
need('dnsperf', 'dnsperf');

async function freePort() {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

const port = await freePort();
const dnsmasq = spawn('dnsmasq', ['--keep-in-foreground', '--no-daemon', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
  '--no-resolv', '--no-hosts', '--cache-size=0', '--user=root', '--pid-file=', '--address=/bench.test/192.0.2.1'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const cleanup = () => dnsmasq.kill('SIGTERM');
process.on('exit', cleanup);

const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const qfile = join(dir, 'queries.txt');
writeFileSync(qfile, 'bench.test A\n');

// Pinning: the server on CPU 0 and each client on CPU 1, so that no tool's extra CPU hides behind a shared core.
const CAN_PIN = cpus().length >= 2 && !spawnSync('taskset', ['--version'], { stdio: 'ignore' }).error;
const HAS_TIME = !spawnSync('/usr/bin/time', ['-f', '%U', 'true'], { stdio: 'ignore' }).error;
let pinned = false;
function pinServer(on) {
  pinned = on;
  if (CAN_PIN) spawnSync('taskset', ['-a', '-p', '-c', on ? '0' : `0-${cpus().length - 1}`, String(dnsmasq.pid)], { stdio: 'ignore' });
}
/** Run a client, pinned to CPU 1 in the pinned phase, with its CPU time (user + system seconds) where /usr/bin/time exists. */
function client(cmd, args, opts = {}) {
  let argv = [cmd, ...args];
  if (pinned && CAN_PIN) argv = ['taskset', '-c', '1', ...argv];
  if (HAS_TIME) argv = ['/usr/bin/time', '-f', 'K8SDIAG_CPU=%U+%S', ...argv];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', ...opts });
  const cpu = /K8SDIAG_CPU=([\d.]+)\+([\d.]+)/.exec(r.stderr);
  return { ...r, cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : undefined };
}

function runDnsperf() {
  const r = client('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', qfile, '-q', '100', '-c', '1', '-l', String(SECONDS)]);
  const m = /Queries per second:\s+([\d.]+)/.exec(r.stdout);
  const lost = /Queries lost:\s+(\d+)/.exec(r.stdout);
  const done = /Queries completed:\s+(\d+)/.exec(r.stdout);
  if (!m) throw new Error(`dnsperf: ${r.stdout}${r.stderr}`);
  return { qps: Number(m[1]), lost: Number(lost?.[1] ?? 0), cpuPerQueryUs: r.cpuSeconds !== undefined && done ? (r.cpuSeconds * 1e6) / Number(done[1]) : undefined };
}

function runDnsbench(args, withRss = false) {
  const nodeArgs = withRss ? ['--import', HOOK, BIN] : [BIN];
  const r = client(process.execPath, [...nodeArgs, 'dnsbench', '--json', '--no-progress', '--server', '127.0.0.1', '-p', String(port), '-d', 'bench.test', ...args], { maxBuffer: 64 << 20 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`dnsbench exit ${r.status}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout);
  const rss = /K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr);
  return { qps: doc.qps, sent: doc.sent, timeouts: doc.timeouts, rssMiB: rss ? Number(rss[1]) / 1024 : undefined, cpuPerQueryUs: r.cpuSeconds !== undefined && doc.answered > 0 ? (r.cpuSeconds * 1e6) / doc.answered : undefined };
}

console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
console.log(`dnsmasq on 127.0.0.1:${port}; ${SECONDS} s per run, ${ROUNDS} rounds A B`);
console.log('');
const mean = (xs) => xs.reduce((x, y) => x + y, 0) / xs.length;
const spread = (xs) => `${Math.min(...xs).toFixed(3)}..${Math.max(...xs).toFixed(3)}`;
const us = (x) => (x === undefined ? 'n/a' : `${x.toFixed(2)} us`);
console.log('1. queries per second, 100 outstanding, one name');
console.log('   (A = dnsperf, one socket; B = k8sdiag dnsbench, default: 256 source ports; C = dnsbench --sockets 1)');
const phases = CAN_PIN ? [true, false] : [false];
if (!CAN_PIN) console.log('   not pinned: fewer than two cores, or no taskset');
for (const phase of phases) {
  pinServer(phase);
  console.log(`   ${phase ? 'PINNED: dnsmasq on CPU 0, each client on CPU 1' : 'UNPINNED: every process on any core'}`);
  const ratiosB = [];
  const ratiosC = [];
  const cpu = { a: [], b: [], c: [] };
  for (let i = 0; i < ROUNDS; i++) {
    const pa = runDnsperf();
    const pb = runDnsbench(['-c', '100', '--duration', String(SECONDS)]);
    const pc = runDnsbench(['-c', '100', '--sockets', '1', '--duration', String(SECONDS)]);
    ratiosB.push(pb.qps / pa.qps);
    ratiosC.push(pc.qps / pa.qps);
    for (const [k, v] of [['a', pa], ['b', pb], ['c', pc]]) if (v.cpuPerQueryUs !== undefined) cpu[k].push(v.cpuPerQueryUs);
    console.log(`   round ${i + 1}: A dnsperf ${pa.qps.toFixed(0).padStart(7)} qps (lost ${pa.lost}, CPU ${us(pa.cpuPerQueryUs)}/query)  ` +
      `B dnsbench ${pb.qps.toFixed(0).padStart(7)} qps (timeouts ${pb.timeouts}, CPU ${us(pb.cpuPerQueryUs)}/query)  ` +
      `C --sockets 1 ${pc.qps.toFixed(0).padStart(7)} qps (CPU ${us(pc.cpuPerQueryUs)}/query)`);
  }
  const label = phase ? 'pinned' : 'unpinned';
  console.log(`   ${label}: dnsbench/dnsperf ${mean(ratiosB).toFixed(3)}x (rounds ${spread(ratiosB)})  ${mean(ratiosB) >= 0.9 ? 'OK' : 'BELOW 0.9x'}; ` +
    `--sockets 1/dnsperf ${mean(ratiosC).toFixed(3)}x (rounds ${spread(ratiosC)})`);
  if (cpu.a.length && cpu.b.length) {
    console.log(`   ${label}: CPU per query, dnsbench/dnsperf ${(mean(cpu.b) / mean(cpu.a)).toFixed(2)}x, --sockets 1/dnsperf ${(mean(cpu.c) / mean(cpu.a)).toFixed(2)}x`);
  }
}
pinServer(false);
console.log('');
console.log('2. the histogram\'s bucket index');
spawnSync(process.execPath, [join(root, 'bench', 'histogram.mjs')], { stdio: 'inherit' });
console.log('');
console.log('2b. dnsbench peak RSS (-c 100)');
const small = runDnsbench(['-c', '100', '-n', '40000'], true);
const big = runDnsbench(['-c', '100', '-n', '400000'], true);
console.log(`   40k queries:  ${small.rssMiB?.toFixed(1)} MiB`);
console.log(`   400k queries: ${big.rssMiB?.toFixed(1)} MiB  (target < 120 MiB) ${big.rssMiB < 120 ? 'OK' : 'OVER'}`);
const growth = big.rssMiB - small.rssMiB;
console.log(`   growth 40k -> 400k: ${growth.toFixed(1)} MiB  (target within 16 MiB) ${Math.abs(growth) <= 16 ? 'OK' : 'OVER'}`);
cleanup();

// 3. svc on a large cluster's dump, against dumping it (iptables-save) in the same run.
console.log('');
console.log('3. k8sdiag svc on a generated kube-proxy dump vs iptables-save of the same rules in a network namespace');
const { generateRules } = await import('./gen-kube-proxy.mjs');
const asRoot = process.getuid?.() === 0 && !spawnSync('ip', ['netns', 'list']).error;
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
function timeIt(fn, n = 3) {
  const ts = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  return median(ts);
}
const svcRuns = {};
for (const services of [2500, 5000]) {
  const rules = generateRules(services, 8);
  const file = join(dir, `rules-${services}.txt`);
  let dumpFile = file;
  let saveNft;
  let saveLegacy;
  if (asRoot) {
    const ns = `k8sdiag-bench-${process.pid}-${services}`;
    spawnSync('ip', ['netns', 'add', ns]);
    try {
      for (const [restore, save, key] of [['iptables-nft-restore', 'iptables-nft-save', 'nft'], ['iptables-legacy-restore', 'iptables-legacy-save', 'legacy']]) {
        const r = spawnSync('ip', ['netns', 'exec', ns, restore], { input: rules });
        if (r.status !== 0) continue;
        const out = join(dir, `save-${key}-${services}.txt`);
        const ms = timeIt(() => spawnSync('ip', ['netns', 'exec', ns, save], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 30 }), key === 'nft' ? 1 : 3);
        writeFileSync(out, spawnSync('ip', ['netns', 'exec', ns, save], { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout);
        if (key === 'nft') saveNft = ms;
        else saveLegacy = ms;
        dumpFile = out;
        spawnSync('ip', ['netns', 'exec', ns, key === 'nft' ? 'iptables-nft' : 'iptables-legacy', '-t', 'nat', '-F']);
      }
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  } else writeFileSync(file, rules);
  let rss;
  const svcMs = timeIt(() => {
    const r = spawnSync(process.execPath, ['--import', HOOK, BIN, 'svc', '--file', dumpFile, '--json'], { encoding: 'utf8', maxBuffer: 1 << 30 });
    rss = Number(/K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024;
  });
  svcRuns[services] = svcMs;
  const lines = rules.split('\n').length;
  console.log(`   ${services} services x 8 endpoints (${lines} lines):`);
  if (saveNft !== undefined) console.log(`     iptables-save (nf_tables backend, Debian's default): ${(saveNft / 1000).toFixed(2)} s`);
  if (saveLegacy !== undefined) console.log(`     iptables-legacy-save:                                ${(saveLegacy / 1000).toFixed(2)} s`);
  console.log(`     k8sdiag svc --json (whole process, median of 3):     ${(svcMs / 1000).toFixed(2)} s, peak RSS ${rss.toFixed(0)} MiB` +
    `${services === 5000 ? `  (target < 1.4 s ${svcMs < 1400 ? 'OK' : 'OVER'}, < 400 MiB ${rss < 400 ? 'OK' : 'OVER'})` : ''}`);
  if (saveNft !== undefined) console.log(`     ratio svc / iptables-save: ${(svcMs / saveNft).toFixed(3)}x`);
  if (saveLegacy !== undefined) console.log(`     ratio svc / iptables-legacy-save: ${(svcMs / saveLegacy).toFixed(3)}x`);
  if (!asRoot) console.log('     (not root: iptables-save not timed)');
}
console.log(`   growth 2500 -> 5000 services: ${(svcRuns[5000] / svcRuns[2500]).toFixed(2)}x time (linear: 2x)`);
