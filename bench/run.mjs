#!/usr/bin/env node
// npm run bench: speed and memory of k8sdiag, as ratios against references
// measured in the same run on the same machine. Prints figures; asserts nothing.
//
// 1. dnsbench vs dnsperf: queries per second (dnsbench's qpsToLastAnswer, the
//    kind of rate dnsperf prints) and CPU per query, 10, 100 and
//    1000 in flight, against dnsmasq and unbound on loopback. PINNED (server on
//    CPU 0, each client on CPU 1) where the machine has two cores, then
//    UNPINNED at 100 in flight for what a user on a shared machine sees.
//    Compared at the same number of source ports: dnsperf -c 1 with dnsbench
//    --sockets 1, dnsperf -c N with dnsbench --sockets N, N = min(256, in
//    flight) (256 is dnsbench's default; dnsperf with more clients than
//    queries in flight collapses to a few hundred qps).
// 2. Resolver mode vs real glibc getaddrinfo() in threads (bench/gai.c), on
//    the same resolv.conf, in a network namespace of its own (root and cc),
//    and the Node floor for the same datagrams (bench/floor-resolver.mjs).
// 3. svc vs iptables-legacy-save printing the same rules (root), 2,500 to
//    10,000 Services, pinned (each on CPU 1) and unpinned; time per doubling;
//    peak RSS.
//    3b. svc on iptables-save and nft dumps up to the 256 MiB input cap: peak RSS against the dump's size.
// 4. Start-up: --version vs node -e 0.  5. dnsbench peak RSS vs queries.
// 6. The histogram's bucket index.
// 8. watch reading a capture of 1M and 10M real DNS packets against tcpdump -nn -r, each pinned to one core; peak RSS
//    of both (targets: at least tcpdump's speed; flat memory, 10M within 10% of 1M).
// 7. merge at fleet scale: 10k and 100k real dnsbench documents (NDJSON) from 1,000 nodes, against the floor
//    (bench/floor-merge.mjs: the same file streamed, each line JSON.parse'd, nothing kept); peak RSS against the
//    largest document (targets: 100k documents in under 10 s; peak RSS under merge's of one document + 64 MiB + 3x
//    the largest document); 10k pretty-printed documents behind `kubectl logs --prefix`.
// 9b. what watch alone keeps up with: a capture fed to `watch --pcap -` at fixed packet rates (bench/pace-pcap.mjs).
// 10. drops' overhead: dnsbench's rate with and without `k8sdiag drops` running (target: within 5% at 20,000/s).
// 8b. watch's peak RSS with 1,000,000 distinct client addresses (bench/gen-clients.mjs), at 2M and 10M packets
//    (targets: at most 256 MiB with Node's default flags, within 10% of each other).
// 9. watch live (tcpdump -i any) on a node namespace while dnsbench sends 50,000 queries/s from a pod namespace through
//    a kube-proxy-shaped DNAT to an endpoint running dnsmasq (root): what tcpdump says it dropped, and whether watch
//    counted every query dnsbench sent (target: no drop, every query).
//
// BENCH_SECONDS (default 3) per run, BENCH_ROUNDS (default 2) rounds A B A B;
// BENCH_ONLY=1,2 runs only those sections (1b: the Node floor, bench/floor.mjs; 1c: the floor in C,
// bench/floor.c, per datagram and with recvmmsg/sendmmsg: what a native addon would buy).
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(root, 'bin', 'k8sdiag.js');
const HOOK = join(root, 'bench', 'rss-hook.mjs');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

const has = (cmd, args = ['--version']) => !spawnSync(cmd, args, { stdio: 'ignore' }).error;
if (!has('dnsmasq') || !has('dnsperf', ['-h'])) {
  console.error('bench: needs dnsmasq and dnsperf (apt-get install dnsmasq-base dnsperf)');
  process.exit(2);
}
const HAS_UNBOUND = has('unbound', ['-h']);
const CAN_PIN = cpus().length >= 2 && has('taskset');
const HAS_TIME = !spawnSync('/usr/bin/time', ['-f', '%U', 'true'], { stdio: 'ignore' }).error;
const AS_ROOT = process.getuid?.() === 0 && has('ip', ['netns', 'list']);

const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-bench-'));
const children = [];
const namespaces = [];
function cleanup() {
  for (const c of children) c.kill('SIGTERM');
  for (const ns of namespaces) {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

async function freePort() {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mean = (xs) => xs.reduce((x, y) => x + y, 0) / xs.length;
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)}`;
function timeIt(fn, n = 3) {
  const ts = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  return median(ts);
}
const ratio = (xs) => `${mean(xs).toFixed(2)}x (rounds ${spread(xs)})`;

// ---- servers ----
async function startDnsmasq() {
  const port = await freePort();
  const p = spawn('dnsmasq', ['--keep-in-foreground', '--no-daemon', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', '--cache-size=0', '--user=root', '--pid-file=', '--address=/bench.test/192.0.2.1'], { stdio: 'ignore' });
  children.push(p);
  await sleep(500);
  return { name: 'dnsmasq', port, pid: p.pid };
}
async function startUnbound() {
  const port = await freePort();
  const conf = join(dir, 'unbound.conf');
  writeFileSync(conf, ['server:', '  interface: 127.0.0.1', `  port: ${port}`, '  do-daemonize: no', '  chroot: ""', '  username: ""', '  pidfile: ""',
    `  directory: "${dir}"`, '  use-syslog: no', '  logfile: ""', '  verbosity: 0', '  num-threads: 1', '  do-ip6: no', '  so-rcvbuf: 4m',
    '  access-control: 127.0.0.0/8 allow', '  local-zone: "bench.test." static', '  local-data: "bench.test. 60 IN A 192.0.2.1"',
    'remote-control:', '  control-enable: no', ''].join('\n'));
  const p = spawn('unbound', ['-d', '-c', conf], { stdio: 'ignore' });
  children.push(p);
  await sleep(1000);
  return { name: 'unbound', port, pid: p.pid };
}
function pinServer(server, on) {
  if (CAN_PIN) spawnSync('taskset', ['-a', '-p', '-c', on ? '0' : `0-${cpus().length - 1}`, String(server.pid)], { stdio: 'ignore' });
}

/** Run a client, pinned to CPU 1 when `pinned`, with its CPU time (user + system seconds) where /usr/bin/time exists. */
function client(pinned, cmd, args, opts = {}) {
  let argv = [cmd, ...args];
  if (pinned && CAN_PIN) argv = ['taskset', '-c', '1', ...argv];
  if (HAS_TIME) argv = ['/usr/bin/time', '-f', 'K8SDIAG_CPU=%U+%S', ...argv];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const cpu = /K8SDIAG_CPU=([\d.]+)\+([\d.]+)/.exec(r.stderr ?? '');
  return { ...r, cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : undefined };
}

const qfile = join(dir, 'queries.txt');
writeFileSync(qfile, 'bench.test A\n');

function runDnsperf(pinned, port, inFlight, clients) {
  const r = client(pinned, 'dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', qfile, '-q', String(inFlight), '-c', String(clients), '-l', String(SECONDS)]);
  const m = /Queries per second:\s+([\d.]+)/.exec(r.stdout);
  const done = /Queries completed:\s+(\d+)/.exec(r.stdout);
  if (!m || !done) throw new Error(`dnsperf: ${r.stdout}${r.stderr}`);
  return { qps: Number(m[1]), cpuUs: r.cpuSeconds !== undefined ? (r.cpuSeconds * 1e6) / Number(done[1]) : undefined };
}

function runDnsbench(pinned, port, args, withRss = false) {
  const nodeArgs = withRss ? ['--import', HOOK, BIN] : [BIN];
  const r = client(pinned, process.execPath, [...nodeArgs, 'dnsbench', '--json', '--no-progress', '--server', '127.0.0.1', '-p', String(port), '-d', 'bench.test', ...args]);
  if (r.status !== 0 && r.status !== 1) throw new Error(`dnsbench exit ${r.status}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout);
  const rss = /K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr);
  // The rate to the last answer, as dnsperf's is (it gives up on what is in flight when its time is up); qps over the
  // whole run includes the wait for queries the server dropped.
  return { qps: doc.qpsToLastAnswer ?? doc.qps, qpsRun: doc.qps, timeouts: doc.timeouts, rssMiB: rss ? Number(rss[1]) / 1024 : undefined, cpuUs: r.cpuSeconds !== undefined && doc.answered > 0 ? (r.cpuSeconds * 1e6) / doc.answered : undefined };
}

const want = (section) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(section);
const us = (x) => (x === undefined ? 'n/a' : `${x.toFixed(2)}us`);

/** A B rounds of dnsperf against dnsbench at the same in-flight count and source ports. */
function compare(pinned, server, inFlight, ports) {
  const qps = [];
  const cpu = [];
  const lines = [];
  for (let i = 0; i < ROUNDS; i++) {
    const a = runDnsperf(pinned, server.port, inFlight, ports);
    const b = runDnsbench(pinned, server.port, ['-c', String(inFlight), '--sockets', String(ports), '--duration', String(SECONDS)]);
    qps.push(b.qps / a.qps);
    if (a.cpuUs !== undefined && b.cpuUs !== undefined) cpu.push(b.cpuUs / a.cpuUs);
    lines.push(`${a.qps.toFixed(0)}/${b.qps.toFixed(0)} qps, ${us(a.cpuUs)}/${us(b.cpuUs)} CPU${b.timeouts ? `, ${b.timeouts} timeouts (dnsbench qps over its whole run ${b.qpsRun.toFixed(0)})` : ''}`);
  }
  const ok = mean(qps) >= 1 && (cpu.length === 0 || mean(cpu) <= 1.2);
  console.log(`   ${server.name.padEnd(8)} ${String(inFlight).padStart(4)} in flight, ${String(ports).padStart(3)} port${ports === 1 ? ' ' : 's'}: ` +
    `qps ${ratio(qps)}, CPU/query ${cpu.length ? ratio(cpu) : 'n/a'}  ${ok ? 'MEETS' : 'BELOW'} (>= 1.0x qps, <= 1.2x CPU)`);
  console.log(`        dnsperf/dnsbench per round: ${lines.join('; ')}`);
  return { qps: mean(qps), cpu: cpu.length ? mean(cpu) : undefined };
}

console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
console.log(`${SECONDS} s per run, ${ROUNDS} rounds A B; ${CAN_PIN ? 'PINNED phases: server on CPU 0, each client on CPU 1 (taskset)' : 'NOT PINNED: fewer than two cores, or no taskset'}`);
console.log('');

// ---- 1. dnsbench vs dnsperf ----
const servers = [await startDnsmasq()];
if (HAS_UNBOUND) servers.push(await startUnbound());
if (want('1')) {
console.log('1. dnsbench / dnsperf, queries per second and CPU per query (user + system), same in-flight count and source ports');
if (!HAS_UNBOUND) console.log('   unbound not installed (apt-get install unbound): dnsmasq only');
if (CAN_PIN) {
  console.log('   PINNED');
  for (const server of servers) {
    pinServer(server, true);
    for (const inFlight of [10, 100, 1000]) for (const ports of [1, Math.min(256, inFlight)]) compare(true, server, inFlight, ports);
  }
}
console.log('   UNPINNED (every process on any core: dnsperf\'s two threads and the server share the cores)');
for (const server of servers) {
  pinServer(server, false);
  for (const ports of [1, 256]) compare(false, server, 100, ports);
}
}
const dnsmasq = servers[0];

// ---- 1b. the Node floor ----
if (want('1b')) {
  console.log('');
  console.log('1b. the Node floor (bench/floor.mjs: no accounting, one reply -> one query), 100 in flight, / dnsperf at the same ports');
  for (const server of servers) {
    pinServer(server, CAN_PIN);
    for (const ports of [1, 256]) {
      for (const path of ['public', 'handle']) {
        const rq = [];
        const rc = [];
        for (let i = 0; i < ROUNDS; i++) {
          const a = runDnsperf(CAN_PIN, server.port, 100, ports);
          const f = JSON.parse(client(CAN_PIN, process.execPath, [join(root, 'bench', 'floor.mjs'), String(server.port), String(ports), String(SECONDS), path]).stdout);
          rq.push(f.qps / a.qps);
          if (a.cpuUs !== undefined) rc.push(f.cpuUs / a.cpuUs);
        }
        console.log(`   ${CAN_PIN ? 'pinned' : 'unpinned'}, ${server.name.padEnd(8)} ${String(ports).padStart(3)} port${ports === 1 ? ' ' : 's'}, ${path.padEnd(6)} API: qps ${ratio(rq)}, CPU/query ${rc.length ? ratio(rc) : 'n/a'}`);
      }
    }
  }
}

// ---- 1c. what a native addon would buy ----
if (want('1c')) {
  console.log('');
  console.log('1c. what a native addon would buy: the Node floor against the same loop in C (bench/floor.c), per datagram (plain) and');
  console.log('    batched (recvmmsg/sendmmsg, up to 64 per call); qps / dnsperf at the same ports, and CPU (user + system) per query');
  const floorC = join(dir, 'floor');
  if (spawnSync('cc', ['-O2', '-o', floorC, join(root, 'bench', 'floor.c')], { stdio: 'inherit' }).status !== 0) console.log('   skipped: no C compiler (cc)');
  else {
    for (const server of servers) {
      pinServer(server, CAN_PIN);
      for (const inFlight of [100, 1000]) {
        for (const ports of [1, 256]) {
          const runs = { node: [], 'c-plain': [], 'c-mmsg': [] };
          const perf = [];
          for (let i = 0; i < ROUNDS; i++) {
            const a = runDnsperf(CAN_PIN, server.port, inFlight, ports);
            perf.push(a);
            const env = { ...process.env, IN_FLIGHT: String(inFlight) };
            runs.node.push(JSON.parse(client(CAN_PIN, process.execPath, [join(root, 'bench', 'floor.mjs'), String(server.port), String(ports), String(SECONDS), 'handle'], { env }).stdout));
            for (const mode of ['plain', 'mmsg']) runs[`c-${mode}`].push(JSON.parse(client(CAN_PIN, floorC, [String(server.port), String(ports), String(SECONDS), mode], { env }).stdout));
          }
          const cell = (name) => {
            const rs = runs[name];
            const rq = rs.map((r, i) => r.qps / perf[i].qps);
            return `${name} ${ratio(rq)}, ${mean(rs.map((r) => r.cpuUs)).toFixed(2)}us`;
          };
          const cpuOf = (name) => mean(runs[name].map((r) => r.cpuUs));
          console.log(`   ${CAN_PIN ? 'pinned' : 'unpinned'}, ${server.name.padEnd(8)} ${String(inFlight).padStart(4)} in flight, ${String(ports).padStart(3)} port${ports === 1 ? ' ' : 's'}: ` +
            `dnsperf ${mean(perf.map((a) => a.qps)).toFixed(0)} qps${perf[0].cpuUs !== undefined ? `, ${mean(perf.map((a) => a.cpuUs)).toFixed(2)}us` : ''}; ${cell('node')}; ${cell('c-plain')}; ${cell('c-mmsg')}`);
          console.log(`        Node's own cost per query (Node floor - C plain): ${(cpuOf('node') - cpuOf('c-plain')).toFixed(2)}us; batching saves (C plain - C mmsg): ${(cpuOf('c-plain') - cpuOf('c-mmsg')).toFixed(2)}us`);
        }
      }
    }
  }
}

// ---- 2. resolver mode vs getaddrinfo ----
if (want('2')) {
console.log('');
console.log('2. dnsbench --resolv (glibc emulation) / glibc getaddrinfo() in threads, lookups per second and CPU per lookup');
const gai = join(dir, 'gai');
if (!AS_ROOT) console.log('   skipped: needs root for a network namespace (getaddrinfo reads /etc/resolv.conf and port 53)');
else if (spawnSync('cc', ['-O2', '-pthread', '-o', gai, join(root, 'bench', 'gai.c')], { stdio: 'inherit' }).status !== 0) console.log('   skipped: no C compiler (cc)');
else {
  const ns = `k8sdiag-bench-${process.pid}-gai`;
  namespaces.push(ns);
  spawnSync('ip', ['netns', 'add', ns]);
  spawnSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  mkdirSync(`/etc/netns/${ns}`, { recursive: true });
  // A pod's resolv.conf: `bench.test` walks three search domains (NXDOMAIN) before the name itself, A and AAAA each.
  writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');
  const server = spawn('ip', ['netns', 'exec', ns, 'dnsmasq', '--keep-in-foreground', '--no-daemon', '--port=53', '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', '--cache-size=0', '--user=root', '--pid-file=', '--address=/bench.test/192.0.2.1', '--address=/cluster.local/'], { stdio: 'ignore' });
  children.push(server);
  await sleep(700);
  const pid = String(server.pid); // ip netns exec execs dnsmasq itself
  const inNs = (pinned, cmd, args) => client(pinned, 'ip', ['netns', 'exec', ns, ...(pinned && CAN_PIN ? ['taskset', '-c', '1'] : []), cmd, ...args]);
  for (const pinned of CAN_PIN ? [true, false] : [false]) {
    if (pid && CAN_PIN) spawnSync('taskset', ['-a', '-p', '-c', pinned ? '0' : `0-${cpus().length - 1}`, pid], { stdio: 'ignore' });
    for (const c of [10, 100]) {
      const rate = [];
      const cpu = [];
      const lines = [];
      for (let i = 0; i < ROUNDS; i++) {
        // /usr/bin/time wraps `ip netns exec`: the CPU of the tool inside is in its children's times.
        const a = inNs(pinned, gai, [String(c), String(SECONDS), 'bench.test']);
        const m = /lookups=(\d+) ok=(\d+) failed=(\d+) seconds=([\d.]+)/.exec(a.stdout);
        const b = inNs(pinned, process.execPath, [BIN, 'dnsbench', '--resolv', '/etc/resolv.conf', '-d', 'bench.test', '-c', String(c), '--duration', String(SECONDS), '--json', '--no-progress']);
        if (!m || (b.status !== 0 && b.status !== 1)) throw new Error(`resolver bench: ${a.stdout}${a.stderr}${b.stderr}`);
        const doc = JSON.parse(b.stdout);
        const ra = Number(m[1]) / Number(m[4]);
        const rb = (doc.lookups * 1000) / doc.durationMs;
        rate.push(rb / ra);
        const ca = a.cpuSeconds !== undefined ? (a.cpuSeconds * 1e6) / Number(m[1]) : undefined;
        const cb = b.cpuSeconds !== undefined ? (b.cpuSeconds * 1e6) / doc.lookups : undefined;
        if (ca !== undefined && cb !== undefined) cpu.push(cb / ca);
        lines.push(`${ra.toFixed(0)}/${rb.toFixed(0)} lookups/s, ${us(ca)}/${us(cb)} CPU`);
      }
      const ok = mean(rate) >= 1 && (cpu.length === 0 || mean(cpu) <= 1.5);
      console.log(`   ${pinned ? 'PINNED  ' : 'UNPINNED'} ${String(c).padStart(3)} lookups in flight: rate ${ratio(rate)}, CPU/lookup ${cpu.length ? ratio(cpu) : 'n/a'}  ${ok ? 'MEETS' : 'BELOW'} (>= 1.0x, <= 1.5x CPU)`);
      console.log(`        getaddrinfo/dnsbench per round: ${lines.join('; ')}`);
      // The floor: Node making the same datagrams with no emulation (bench/floor-resolver.mjs), against the last round's getaddrinfo.
      const f = inNs(pinned, process.execPath, [join(root, 'bench', 'floor-resolver.mjs'), '127.0.0.1', '53', String(c), String(SECONDS)]);
      const fl = JSON.parse(f.stdout);
      const last = lines.length ? /^(\d+)\/\d+ lookups\/s, ([\d.]+)us/.exec(lines[lines.length - 1]) : null;
      if (last) console.log(`        the Node floor: ${fl.lookupsPerSecond} lookups/s, ${fl.cpuUs}us CPU (user ${fl.userUs}, system ${fl.sysUs}): ${(fl.lookupsPerSecond / Number(last[1])).toFixed(2)}x getaddrinfo's rate, ${(fl.cpuUs / Number(last[2])).toFixed(2)}x its CPU`);
    }
  }
}

}

// ---- 3. svc vs iptables-legacy-save ----
// Both are whole processes timed alike, unpinned and (where the machine can) each pinned to CPU 1: iptables-save is
// one thread, while Node's garbage collector and compiler threads take a second core when they can get one.
if (want('3')) {
console.log('');
console.log('3. k8sdiag svc on kube-proxy\'s rules / iptables-legacy-save printing the same rules (whole processes, median of 3)');
console.log(`   ${CAN_PIN ? 'PINNED: each process on CPU 1 (taskset); UNPINNED: any core' : 'NOT PINNED: fewer than two cores, or no taskset'}`);
const { generateRules } = await import('./gen-kube-proxy.mjs');
const svcMs = {};
const pin = (pinned, argv) => (pinned && CAN_PIN ? ['taskset', '-c', '1', ...argv] : argv);
for (const services of [2500, 5000, 10000]) {
  const rules = generateRules(services, 8);
  let dumpFile = join(dir, `rules-${services}.txt`);
  writeFileSync(dumpFile, rules);
  const saveMs = {};
  let nftMs;
  const ns = `k8sdiag-bench-${process.pid}-${services}`;
  let restored = false;
  if (AS_ROOT) {
    namespaces.push(ns);
    spawnSync('ip', ['netns', 'add', ns]);
    restored = spawnSync('ip', ['netns', 'exec', ns, 'iptables-legacy-restore'], { input: rules }).status === 0;
    if (restored) {
      dumpFile = join(dir, `save-${services}.txt`);
      writeFileSync(dumpFile, spawnSync('ip', ['netns', 'exec', ns, 'iptables-legacy-save'], { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout);
    }
  }
  const svcRuns = {};
  for (const pinned of CAN_PIN ? [true, false] : [false]) {
    const key = pinned ? 'pinned' : 'unpinned';
    if (restored) {
      const argv = ['ip', 'netns', 'exec', ns, ...pin(pinned, ['iptables-legacy-save'])];
      saveMs[key] = timeIt(() => spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 30 }));
    }
    let rss = 0;
    const ms = timeIt(() => {
      const argv = pin(pinned, [process.execPath, '--import', HOOK, BIN, 'svc', '--file', dumpFile]);
      const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30 });
      rss = Number(/K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024;
    });
    let jsonRss = 0;
    const jsonMs = timeIt(() => {
      const argv = pin(pinned, [process.execPath, '--import', HOOK, BIN, 'svc', '--file', dumpFile, '--json']);
      const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30 });
      jsonRss = Number(/K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024;
    });
    svcRuns[key] = { ms, rss, jsonMs, jsonRss };
  }
  if (restored) {
    spawnSync('ip', ['netns', 'exec', ns, 'iptables-legacy', '-t', 'nat', '-F']);
    // The nf_tables backend (Debian's default iptables-save) only at the smallest size: it takes seconds.
    if (services === 2500 && spawnSync('ip', ['netns', 'exec', ns, 'iptables-nft-restore'], { input: rules }).status === 0) {
      nftMs = timeIt(() => spawnSync('ip', ['netns', 'exec', ns, 'iptables-nft-save'], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 30 }), 1);
    }
  }
  svcMs[services] = (svcRuns.pinned ?? svcRuns.unpinned).ms;
  const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`   ${services} Services x 8 endpoints (${rules.split('\n').length} lines):` +
    `${restored ? Object.entries(saveMs).map(([k, v]) => ` iptables-legacy-save ${fmt(v)} ${k};`).join('') : ' (not root: iptables-save not timed)'}` +
    `${nftMs !== undefined ? ` iptables-nft-save ${fmt(nftMs)} unpinned;` : ''}`);
  for (const [key, r] of Object.entries(svcRuns)) {
    const save = saveMs[key];
    const vs = (x) => (save !== undefined ? ` = ${(x / save).toFixed(2)}x iptables-legacy-save` : '');
    const verdict = services === 5000 ? `  ${save !== undefined && r.ms <= save ? 'MEETS' : 'BELOW'} (<= 1.0x), ${r.rss < 200 ? 'MEETS' : 'OVER'} (< 200 MiB)` : '';
    console.log(`      ${key.padEnd(8)} svc        ${fmt(r.ms)}${vs(r.ms)}, peak RSS ${r.rss.toFixed(0)} MiB${verdict}`);
    console.log(`      ${key.padEnd(8)} svc --json ${fmt(r.jsonMs)}${vs(r.jsonMs)}, peak RSS ${r.jsonRss.toFixed(0)} MiB`);
  }
}
console.log(`   time per doubling${CAN_PIN ? ', pinned' : ''}: 2500 -> 5000 ${(svcMs[5000] / svcMs[2500]).toFixed(2)}x, 5000 -> 10000 ${(svcMs[10000] / svcMs[5000]).toFixed(2)}x (linear: 2x; a fixed start-up cost makes it less)`);

}

// At the input cap (256 MiB, LIMITS.svc): peak RSS against the dump's size, both kube-proxy modes; unpinned, one run
// each per round (a run takes 10 s or more).
if (want('3') || want('3b')) {
const { generateRules } = await import('./gen-kube-proxy.mjs');
console.log('');
console.log('3b. svc on dumps up to the input cap (256 MiB): peak RSS / dump size (target: at most 3x at the cap)');
const { generateNftRuleset } = await import('./gen-kube-proxy.mjs');
// Adversarial dumps: one line repeated up to just under the cap, never closed (no COMMIT, no closing brace).
const CAP = 238 * 2 ** 20;
const repeated = (head, line) => head + line.repeat(Math.floor((CAP - head.length) / line.length));
const big = [
  ['iptables-save', '50000 Services x 5 endpoints', () => generateRules(50000, 5)],
  ['iptables-save', '100000 Services x 5 endpoints', () => generateRules(100000, 5)],
  ['nft list ruleset', '50000 Services x 5 endpoints', () => generateNftRuleset(50000, 5)],
  ['nft list ruleset', '170000 Services x 5 endpoints', () => generateNftRuleset(170000, 5)],
  ['iptables-save', 'one KUBE-SERVICES rule repeated, no COMMIT', () => repeated('*nat\n:KUBE-SERVICES - [0:0]\n', '-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU\n')],
  ['iptables-save', 'one statistic rule repeated, no COMMIT', () => repeated('*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU\n', '-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 10.0.0.1:53" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-AAAAAAAAAAAAAAAA\n')],
  ['nft list ruleset', 'one chain rule repeated, unclosed', () => repeated('table ip kube-proxy {\n\tchain service-ULMVA6XW-ns1/svc1/tcp/p80 {\n', '\t\tip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade\n')],
  ['nft list ruleset', 'one map element repeated, unclosed', () => repeated('table ip kube-proxy {\n\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\telements = { ', '172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80,\n\t\t\t     ')],
];
for (const [kind, what, make] of big) {
  const file = join(dir, `big-svc.txt`);
  writeFileSync(file, make());
  const mib = statSync(file).size / 2 ** 20;
  const runs = [];
  let longest = 0;
  for (let round = 0; round < ROUNDS; round++) {
    let rss = 0;
    const ms = timeIt(() => {
      const r = spawnSync(process.execPath, ['--import', HOOK, BIN, 'svc', '--file', file], { encoding: 'utf8', maxBuffer: 1 << 30 });
      if (r.status !== 0 && r.status !== 1) console.log(`      svc exited ${r.status}: ${r.stderr.split('\n')[0]}`);
      rss = Number(/K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024;
      longest = Math.max(longest, ...`${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.length));
    }, 1);
    runs.push({ ms, rss });
  }
  rmSync(file);
  const rss = runs.map((r) => r.rss);
  const secs = runs.map((r) => (r.ms / 1000).toFixed(1)).join(', ');
  const times = Math.max(...rss) / mib;
  const atCap = mib > 200 ? `  ${times <= 3 ? 'MEETS' : 'OVER'} (<= 3x at the cap)` : '';
  console.log(`   ${kind} ${what} (${mib.toFixed(0)} MiB): peak RSS ${Math.min(...rss).toFixed(0)}..${Math.max(...rss).toFixed(0)} MiB = ${times.toFixed(2)}x the dump; ${secs} s${atCap}; longest line printed ${longest} characters`);
}

}

// ---- 4. start-up ----
if (want('4')) {
console.log('');
const startVersion = timeIt(() => spawnSync(process.execPath, [BIN, '--version']), 11);
const startNode = timeIt(() => spawnSync(process.execPath, ['-e', '0']), 11);
console.log(`4. start-up, median of 11: k8sdiag --version ${startVersion.toFixed(0)} ms, node -e 0 ${startNode.toFixed(0)} ms (${(startVersion / startNode).toFixed(2)}x)`);

}

// ---- 5. peak memory vs queries ----
if (want('5')) {
console.log('');
console.log('5. dnsbench peak RSS (-c 100, dnsmasq), against Node alone');
pinServer(dnsmasq, false);
const nodeAlone = Number(/K8SDIAG_MAXRSS_KB=(\d+)/.exec(spawnSync(process.execPath, ['--import', HOOK, '-e', '0'], { encoding: 'utf8' }).stderr)?.[1] ?? 0) / 1024;
const small = runDnsbench(false, dnsmasq.port, ['-c', '100', '-n', '40000'], true);
const big = runDnsbench(false, dnsmasq.port, ['-c', '100', '-n', '1000000'], true);
console.log(`   node -e 0 ${nodeAlone.toFixed(0)} MiB; 40k queries ${small.rssMiB?.toFixed(0)} MiB; 1M queries ${big.rssMiB?.toFixed(0)} MiB ` +
  `(growth ${(big.rssMiB - small.rssMiB).toFixed(1)} MiB: ${Math.abs(big.rssMiB - small.rssMiB) <= 16 ? 'flat' : 'GROWS'})`);

}

if (want('6')) {
  console.log('');
  console.log('6. the histogram\'s bucket index');
  spawnSync(process.execPath, [join(root, 'bench', 'histogram.mjs')], { stdio: 'inherit' });
}
// ---- 7. merge at fleet scale ----
if (want('7')) {
  console.log('');
  console.log('7. merge: real dnsbench documents from 1,000 nodes, against the floor (stream, split lines, JSON.parse each)');
  pinServer(dnsmasq, false);
  // Real documents, of runs of different shapes, each written again with its own host and start time.
  const real = [['-c', '10', '-n', '2000'], ['-c', '100', '-n', '20000'], ['-c', '50', '-n', '5000', '--qps', '20000']].map((a) => {
    const r = spawnSync(process.execPath, [BIN, 'dnsbench', '--json', '--no-progress', '--server', '127.0.0.1', '-p', String(dnsmasq.port), '-d', 'bench.test', ...a], { encoding: 'utf8' });
    return JSON.parse(r.stdout);
  });
  const write = (file, n, pretty) => {
    const fd = openSync(file, 'w');
    let buf = '';
    let largest = 0;
    for (let i = 0; i < n; i++) {
      const d = { ...real[i % real.length], host: `node-${String(i % 1000).padStart(4, '0')}`, startedAt: new Date(Date.UTC(2026, 0, 1) + i * 3600_000).toISOString() };
      let text = pretty ? JSON.stringify(d, null, 2) : JSON.stringify(d);
      largest = Math.max(largest, text.length);
      if (pretty) text = text.split('\n').map((l) => `[pod/k8sdiag-${d.host}/k8sdiag] ${l}`).join('\n');
      buf += `${text}\n`;
      if (buf.length > 1 << 20) {
        writeSync(fd, buf);
        buf = '';
      }
    }
    writeSync(fd, buf);
    closeSync(fd);
    return largest;
  };
  const timed = (args) => {
    const t = performance.now();
    const r = spawnSync(process.execPath, ['--import', HOOK, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
    const ms = performance.now() - t;
    if (r.status !== 0 && r.status !== 1) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr.slice(0, 500)}`);
    return { s: ms / 1000, rssMiB: Number(/K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024, stdout: r.stdout };
  };
  const one = join(dir, 'merge-1.ndjson');
  const largest = Math.max(write(one, 1, false), ...real.map((d) => JSON.stringify(d).length));
  const single = timed([BIN, 'merge', '--json', one]);
  for (const [n, pretty] of [[10_000, false], [100_000, false], [10_000, true]]) {
    const file = join(dir, `merge-${n}${pretty ? '-pretty' : ''}.ndjson`);
    write(file, n, pretty);
    const mib = statSync(file).size / 2 ** 20;
    const merges = [];
    const floors = [];
    for (let i = 0; i < ROUNDS; i++) {
      if (!pretty) floors.push(timed([join(root, 'bench', 'floor-merge.mjs'), file]));
      merges.push(timed([BIN, 'merge', '--json', file]));
    }
    const m = merges[merges.length - 1];
    const docs = JSON.parse(m.stdout).groups[0].documents;
    if (docs !== n) throw new Error(`merge read ${docs} documents of ${n}`);
    // The fixed floor: one document's run, plus 64 MiB for the heap's slack (V8 grows its heap before it collects).
    const bound = single.rssMiB + 64 + (3 * largest) / 2 ** 20;
    const peak = Math.max(...merges.map((x) => x.rssMiB));
    console.log(`   ${String(n).padStart(6)} documents${pretty ? ', pretty, prefixed' : ''} (${mib.toFixed(0)} MiB): merge ${spread(merges.map((x) => x.s))} s` +
      (floors.length ? `, floor ${spread(floors.map((x) => x.s))} s (${ratio(merges.map((x, k) => x.s / floors[k].s))} the floor's time)` : '') +
      `, ${(n / mean(merges.map((x) => x.s))).toFixed(0)} documents/s; peak RSS ${peak.toFixed(0)} MiB (bound ${bound.toFixed(0)} MiB: ${peak <= bound ? 'MEETS' : 'ABOVE'})` +
      (n === 100_000 && !pretty ? `; ${mean(merges.map((x) => x.s)) < 10 ? 'MEETS' : 'BELOW'} the 10 s target` : ''));
    rmSync(file);
  }
  console.log(`   one document: merge ${single.s.toFixed(2)} s, peak RSS ${single.rssMiB.toFixed(0)} MiB; the largest document ${(largest / 1024).toFixed(0)} KiB`);
}

if (want('8')) {
  console.log('');
  console.log('8. watch reading a capture: real DNS traffic (dnsbench against dnsmasq on loopback, tcpdump -w), against tcpdump -nn -r');
  if (!has('tcpdump')) console.log('   skipped: no tcpdump');
  else {
    pinServer(dnsmasq, false);
    const base = join(dir, 'watch-base.pcap');
    const td = spawn('tcpdump', ['-i', 'lo', '--immediate-mode', '-U', '-s', '512', '-w', base, 'udp', 'port', String(dnsmasq.port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise((resolve) => {
      let err = '';
      td.stderr.on('data', (d) => {
        err += d;
        if (/listening on/.test(err)) resolve();
      });
    });
    // 500,000 queries and their answers: 1M packets.
    spawnSync(process.execPath, [BIN, 'dnsbench', '--json', '--no-progress', '--server', '127.0.0.1', '-p', String(dnsmasq.port), '-d', 'bench.test', '-c', '100', '-n', '500000'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    await new Promise((r) => setTimeout(r, 500));
    const tdDone = new Promise((r) => td.once('exit', r));
    td.kill('SIGTERM');
    await tdDone;
    /** The capture again `times` over, each copy later by the span of the one before: 10M packets from 1M. */
    const repeat = (file, times) => {
      const bytes = readFileSync(base);
      const head = bytes.subarray(0, 24);
      const recs = [];
      let first = -1;
      let last = 0;
      for (let p = 24; p + 16 <= bytes.length; ) {
        const len = bytes.readUInt32LE(p + 8);
        const sec = bytes.readUInt32LE(p);
        if (first < 0) first = sec;
        last = sec;
        recs.push(p);
        p += 16 + len;
      }
      const span = last - first + 10;
      const fd = openSync(file, 'w');
      writeSync(fd, head);
      for (let t = 0; t < times; t++) {
        const copy = Buffer.from(bytes.subarray(24));
        for (const p of recs) copy.writeUInt32LE(copy.readUInt32LE(p - 24) + t * span, p - 24);
        writeSync(fd, copy);
      }
      closeSync(fd);
      return recs.length * times;
    };
    const one = join(dir, 'watch-1.pcap');
    const ten = join(dir, 'watch-10.pcap');
    const n1 = repeat(one, 1);
    const n10 = repeat(ten, 10);
    const pinned = (argv) => (CAN_PIN ? ['taskset', '-c', '1', ...argv] : argv);
    const time = (argv, stdout = 'ignore') => {
      const t = performance.now();
      const [cmd, ...args] = pinned(argv);
      const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', stdout, 'pipe'], maxBuffer: 256 << 20 });
      return { s: (performance.now() - t) / 1000, rssMiB: Number(/K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr ?? '')?.[1] ?? 0) / 1024, out: r.stdout };
    };
    for (const [file, n] of [[one, n1], [ten, n10]]) {
      const watches = [];
      const dumps = [];
      for (let i = 0; i < ROUNDS; i++) {
        // tcpdump decoding every packet (-nn: no name lookups) to /dev/null, the reference.
        dumps.push(time(['sh', '-c', `tcpdump -nn -r ${file} > /dev/null 2>&1`]));
        watches.push(time([process.execPath, '--import', HOOK, BIN, 'watch', '--pcap', file, '--dns-port', String(dnsmasq.port), '--json'], 'pipe'));
      }
      const doc = JSON.parse(watches[0].out);
      const pps = watches.map((x) => n / x.s / 1000);
      console.log(`   ${(n / 1e6).toFixed(1)}M packets (${(statSync(file).size / 2 ** 20).toFixed(0)} MiB), each on one core: watch ${spread(watches.map((x) => x.s))} s (${Math.min(...pps).toFixed(0)}..${Math.max(...pps).toFixed(0)}k packets/s; target >= 300k), tcpdump -nn -r ${spread(dumps.map((x) => x.s))} s: ` +
        `${ratio(watches.map((x, k) => dumps[k].s / x.s))} tcpdump's speed (${doc.queries} queries, ${doc.answered} answered); peak RSS ${Math.max(...watches.map((x) => x.rssMiB)).toFixed(0)} MiB`);
      // tshark decoding every packet, once, on the smaller file (it takes ten times watch's time).
      if (n < 2e6 && has('tshark')) {
        const ts = time(['sh', '-c', `tshark -n -r ${file} > /dev/null 2>&1`]);
        console.log(`      tshark -n -r, once: ${ts.s.toFixed(2)} s: watch is ${(ts.s / Math.max(...watches.map((x) => x.s))).toFixed(1)}x tshark's speed or more`);
      }
    }
    rmSync(one);
    rmSync(ten);
    rmSync(base);
  }
}

if (want('8b')) {
  console.log('');
  console.log("8b. watch's memory with 1,000,000 distinct client addresses (bench/gen-clients.mjs), Node's default flags, 2M and 10M packets");
  const PAIRS = [1_000_000, 5_000_000];
  const runs = [];
  for (const pairs of PAIRS) {
    const file = join(dir, `clients-${pairs}.pcap`);
    spawnSync(process.execPath, [join(root, 'bench', 'gen-clients.mjs'), file, String(pairs), '1000000'], { stdio: 'inherit' });
    const rss = [];
    const secs = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = performance.now();
      const r = spawnSync(process.execPath, ['--import', HOOK, BIN, 'watch', '--pcap', file, '-o', 'json'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
      secs.push((performance.now() - t) / 1000);
      rss.push(Number(/K8SDIAG_MAXRSS_KB=(\d+)/.exec(r.stderr ?? '')?.[1] ?? 0) / 1024);
    }
    rmSync(file);
    runs.push(Math.max(...rss));
    console.log(`   ${(2 * pairs / 1e6).toFixed(0)}M packets: peak RSS ${rss.map((x) => x.toFixed(0)).join(', ')} MiB (target <= 256), ${spread(secs)} s, ${(2 * pairs / 1e3 / Math.max(...secs)).toFixed(0)}k packets/s or more`);
  }
  console.log(`   10M against 2M packets: ${(runs[1] / runs[0]).toFixed(3)}x the peak (target within 10%)`);
}

if (want('9b')) {
  console.log('');
  console.log("9b. what watch alone keeps up with: a capture of 200 clients fed to `watch --pcap -` at fixed packet rates (bench/pace-pcap.mjs), 3 s each, the feeder on CPU 0 and watch on CPU 1");
  const file = join(dir, 'paced.pcap');
  spawnSync(process.execPath, [join(root, 'bench', 'gen-clients.mjs'), file, '1500000', '200'], { stdio: 'inherit' });
  const pin = (cpu) => (CAN_PIN ? `taskset -c ${cpu} ` : '');
  for (const rate of [100_000, 200_000, 300_000, 400_000, 600_000]) {
    const reached = [];
    let counted = '';
    for (let i = 0; i < ROUNDS; i++) {
      const r = spawnSync('sh', ['-c', `${pin(0)}${process.execPath} ${join(root, 'bench', 'pace-pcap.mjs')} ${file} ${rate} 3 | ${pin(1)}${process.execPath} ${BIN} watch --pcap - -o json`], { encoding: 'utf8', maxBuffer: 256 << 20 });
      const m = /K8SDIAG_PACED (\d+) ([\d.]+) (\d+)/.exec(r.stderr ?? '');
      if (m === null) {
        console.log(`   ${rate}/s: no result: ${(r.stderr ?? '').trim().slice(0, 200)}`);
        continue;
      }
      reached.push(Number(m[3]) / rate);
      const doc = JSON.parse(r.stdout);
      counted = `${doc.queries} queries, ${doc.answered} answered, of ${Number(m[1]) / 2} sent`;
    }
    if (reached.length > 0) console.log(`   ${rate.toLocaleString('en')}/s asked: ${ratio(reached)} of it reached (${Math.min(...reached) >= 0.99 ? 'kept up' : 'fell behind: the feeder waited on watch'}); ${counted}`);
  }
  rmSync(file);
}

if (want('10')) {
  console.log('');
  console.log("10. drops' overhead: dnsbench against dnsmasq on loopback, 100 in flight, with and without `k8sdiag drops` running (bpftrace on skb:kfree_skb and conntrack -E), paced at 20,000/s and unpaced");
  if (!AS_ROOT || !has('bpftrace') || !has('conntrack')) console.log('   skipped: needs root, bpftrace and conntrack');
  else {
    pinServer(dnsmasq, CAN_PIN);
    const bench = (qps) => JSON.parse(client(CAN_PIN, process.execPath, [BIN, 'dnsbench', '--json', '--no-progress', '--server', '127.0.0.1', '-p', String(dnsmasq.port), '-d', 'bench.test', '-c', '100', '--duration', String(SECONDS), ...(qps !== undefined ? ['--qps', String(qps)] : [])]).stdout);
    /** Start drops and wait until both of its sources listen; stop() ends it (SIGINT, its summary, 130). */
    const withDrops = async () => {
      const p = spawn(process.execPath, [BIN, 'drops', '--json'], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(p);
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      for (let t = 0; t < 300 && !/watching/.test(err); t++) await sleep(100);
      if (!/watching skb:kfree_skb and conntrack events/.test(err)) console.log(`   drops did not start both sources: ${err.trim()}`);
      return async () => {
        const done = new Promise((r) => p.once('exit', r));
        p.kill('SIGINT');
        await done;
      };
    };
    for (const qps of [20000, undefined]) {
      const off = [];
      const on = [];
      for (let i = 0; i < ROUNDS; i++) {
        off.push(bench(qps));
        const stop = await withDrops();
        on.push(bench(qps));
        await stop();
      }
      const rate = (xs) => xs.map((x) => x.qps);
      const p99 = (xs) => xs.map((x) => x.latencyMs?.p99 ?? NaN);
      console.log(`   ${qps === undefined ? 'unpaced' : `paced at ${qps}/s`}: ${spread(rate(on))}/s with drops, ${spread(rate(off))}/s without: ${ratio(on.map((x, k) => x.qps / off[k].qps))} the rate (target: within 5%); p99 ${spread(p99(on))} ms against ${spread(p99(off))} ms`);
    }
  }
}

if (want('9')) {
  console.log('');
  console.log("9. watch live on a node while dnsbench sends 50,000 queries/s from a pod through DNAT to an endpoint (dnsmasq)");
  if (!AS_ROOT || !has('tcpdump') || !has('iptables', ['-V'])) console.log('   skipped: needs root, ip netns, iptables and tcpdump');
  else await liveWatch();
}
process.exit(0); // the servers are children: the exit handler stops them

/**
 * Section 9: three namespaces as the watch tests' lab has them (a pod, a node forwarding with a kube-proxy-shaped DNAT
 * of the Service address 198.18.0.10 to the endpoint, the endpoint running dnsmasq); `watch -i any` in the node sees
 * each query and answer twice (the pod's veth, the endpoint's). Each round: what dnsbench sent, what watch counted,
 * and what tcpdump says the kernel dropped. Target: no drop, and every query counted.
 */
async function liveWatch() {
  const tag = `${process.pid % 100000}`;
  const [pod, node, ep] = ['wp', 'wn', 'we'].map((x) => `k8sdiag-bench-${tag}-${x}`);
  const sh = (args) => {
    const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  };
  for (const ns of [pod, node, ep]) {
    namespaces.push(ns);
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  sh(['ip', 'link', 'add', `kbp${tag}`, 'netns', pod, 'type', 'veth', 'peer', 'name', `kbn${tag}`, 'netns', node]);
  sh(['ip', 'link', 'add', `kbe${tag}`, 'netns', node, 'type', 'veth', 'peer', 'name', `kbf${tag}`, 'netns', ep]);
  sh(['ip', '-n', pod, 'addr', 'add', '198.18.7.1/30', 'dev', `kbp${tag}`]);
  sh(['ip', '-n', node, 'addr', 'add', '198.18.7.2/30', 'dev', `kbn${tag}`]);
  sh(['ip', '-n', node, 'addr', 'add', '198.18.2.1/30', 'dev', `kbe${tag}`]);
  sh(['ip', '-n', ep, 'addr', 'add', '198.18.2.2/30', 'dev', `kbf${tag}`]);
  for (const [ns, dev] of [[pod, `kbp${tag}`], [node, `kbn${tag}`], [node, `kbe${tag}`], [ep, `kbf${tag}`]]) sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  sh(['ip', '-n', pod, 'route', 'add', 'default', 'via', '198.18.7.2']);
  sh(['ip', '-n', ep, 'route', 'add', 'default', 'via', '198.18.2.1']);
  sh(['ip', 'netns', 'exec', node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  sh(['ip', 'netns', 'exec', node, 'iptables', '-t', 'nat', '-A', 'PREROUTING', '-d', '198.18.0.10', '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', '198.18.2.2:53']);
  const server = spawn('ip', ['netns', 'exec', ep, 'dnsmasq', '--keep-in-foreground', '--no-daemon', '--port=53', '--listen-address=198.18.2.2', '--bind-interfaces',
    '--no-resolv', '--no-hosts', '--cache-size=0', '--user=root', '--pid-file=', '--dns-forward-max=10000', '--address=/bench.test/192.0.2.1'], { stdio: 'ignore' });
  children.push(server);
  await sleep(700);
  const QPS = 50_000;
  const SEND_S = 5;
  const bench = () => spawnSync('ip', ['netns', 'exec', pod, process.execPath, BIN, 'dnsbench', '--server', '198.18.0.10', '-d', 'bench.test', '--qps', String(QPS), '--duration', String(SEND_S), '-c', '500', '--timeout', '1', '--json', '--no-progress'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  // The path's own capacity here, with nothing watching: what the rounds below can be held to.
  const alone = JSON.parse(bench().stdout);
  console.log(`   without watch: dnsbench sent ${alone.sent} (${((alone.sent * 1000) / alone.durationMs).toFixed(0)}/s), answered ${alone.answered}`);
  for (let round = 0; round < ROUNDS; round++) {
    const w = spawn('ip', ['netns', 'exec', node, process.execPath, BIN, 'watch', '-i', 'any', '--json', '--duration', String(SEND_S + 4), '--timeout', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(w);
    let out = '';
    let err = '';
    w.stdout.on('data', (d) => (out += d));
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`watch did not start: ${err}`)), 20_000);
      w.stderr.on('data', (d) => {
        err += d;
        if (/listening on/.test(err)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const done = new Promise((resolve) => w.once('exit', resolve));
    const b = bench();
    await done;
    const sent = JSON.parse(b.stdout);
    const doc = JSON.parse(out);
    const rate = (sent.sent * 1000) / sent.durationMs;
    const ok = doc.capture.kernelDrops === 0 && doc.queries === sent.sent;
    console.log(`   round ${round + 1}: dnsbench sent ${sent.sent} (${rate.toFixed(0)}/s), answered ${sent.answered}; watch counted ${doc.queries} queries, ${doc.answered} answered, ${doc.unanswered} unanswered, ` +
      `${doc.inFlightAtEnd} in flight at the end; tcpdump: ${doc.capture.kernelDrops} dropped by the kernel, ${doc.capture.ifDrops ?? 'n/a'} by the interface  ${ok ? 'MEETS' : 'BELOW'} (no drop, every query counted)`);
  }
}
