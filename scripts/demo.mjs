#!/usr/bin/env node
// npm run demo: the main job on a machine with no network and no cluster.
// Starts `k8sdiag serve` on loopback with injected faults, then runs
// `k8sdiag dnsbench` against it: once as a raw benchmark, once emulating a
// ClusterFirst pod's glibc resolver (search list, A+AAAA from one socket).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/k8sdiag.js', import.meta.url));
/**
 * Run one command as a user would, with what it shows said first. SLOW lines (one per slow answer, printed as it
 * arrives) are many: the first three are shown and the rest counted, so the summary stays on the screen.
 */
const run = (title, args, expect) => {
  console.log(`\n# ${title}\n$ k8sdiag ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 << 20 });
  const lines = r.stdout.split('\n');
  const slow = lines.filter((l) => / SLOW /.test(l));
  if (slow.length > 3) {
    const rest = lines.filter((l) => !/ SLOW /.test(l));
    console.log([...slow.slice(0, 3), `... and ${slow.length - 3} more SLOW lines, one per slow answer as it arrived`, ...rest].join('\n').trimEnd());
  } else console.log(r.stdout.trimEnd());
  console.log(`(exit ${r.status}${r.status === expect.code ? `: ${expect.why}` : ', not the expected ' + expect.code})`);
  if (r.status !== expect.code) failed = true;
};
let failed = false;

// 1 in 500 answers 1.2 s late; 1 in 25 AAAA queries lost, like a lost conntrack insert race.
const serve = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--zone', 'google.com', '--fault', 'delay:1200@every=500', '--fault', 'drop@type=AAAA,every=25', '--duration', '120'], { stdio: ['ignore', 'ignore', 'pipe'] });
const port = await new Promise((resolve, reject) => {
  let err = '';
  serve.stderr.on('data', (d) => {
    err += d;
    const m = /listening on udp 127\.0\.0\.1:(\d+)/.exec(err);
    if (m) resolve(Number(m[1]));
  });
  serve.on('exit', () => reject(new Error(err)));
});
console.log(`k8sdiag serve on 127.0.0.1:${port}: answers google.com, delays 1 in 500 by 1.2 s, drops 1 in 25 AAAA`);

const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-demo-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
// Ctrl-C or SIGTERM: stop the server, and exit through the 'exit' handler above, which removes the directory.
for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15]]) {
  process.on(sig, () => {
    serve.kill('SIGTERM');
    process.exit(128 + n);
  });
}
const conf = join(dir, 'resolv.conf');
writeFileSync(conf, 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5 timeout:1\n');

run('What a ClusterFirst pod sends for google.com: 4 names, 8 queries, 6 of them NXDOMAIN', ['resolv', '--file', conf, 'google.com'],
  { code: 1, why: 'a finding, NDOTS_AMPLIFICATION, as expected' });
run('A raw benchmark: 20000 queries, 100 in flight; answers slower than 1 s are printed as they arrive', ['dnsbench', '--server', '127.0.0.1', '-p', String(port), '-c', '100', '-n', '20000', '-d', 'google.com', '-s', '1', '--no-progress'],
  { code: 1, why: 'a finding, SLOW: the answers the server delays, as expected' });
run('200 lookups as glibc makes them in that pod (timeout:1 keeps the demo short): each lost AAAA stalls a lookup by the timeout', ['dnsbench', '--resolv', conf, '-p', String(port), '-c', '10', '-n', '200', '-d', 'google.com', '-s', '1', '--no-progress'],
  { code: 1, why: 'findings: LOOKUP_STALLS at the resolver timeout, the signature of a lost packet, as expected' });
serve.kill('SIGTERM');
console.log(`\nThe demo ${failed ? 'did NOT show what it should: see the exit codes above' : 'showed each cause it injected'}. In a cluster: \`k8sdiag doctor\` (README).`);
process.exitCode = failed ? 1 : 0;
