/** dnsmasq on loopback as a real peer (installed by .ci/run). */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { execa } from 'execa';

export async function hasDnsmasq(): Promise<boolean> {
  return (await execa('dnsmasq', ['--version'], { reject: false })).exitCode === 0;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Dnsmasq {
  port: number;
  stop: () => Promise<void>;
}

/** google.com and bench.test answer 192.0.2.1; cluster.local names are NXDOMAIN locally. */
export async function startDnsmasq(extra: string[] = []): Promise<Dnsmasq> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    const proc: ChildProcess = spawn('dnsmasq', [
      '--keep-in-foreground', '--no-daemon', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      '--no-resolv', '--no-hosts', '--cache-size=0', '--user=root', '--pid-file=', '--log-facility=-',
      '--address=/google.com/192.0.2.1', '--address=/google.com/2001:db8::1', '--address=/bench.test/192.0.2.1',
      '--local=/cluster.local/', '--local=/internal/', ...extra,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr?.on('data', (d) => (err += d));
    const ok = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(true), 400);
      proc.on('exit', () => {
        clearTimeout(t);
        resolve(false);
      });
    });
    if (ok) {
      return {
        port,
        stop: async () => {
          if (proc.exitCode === null) {
            proc.kill('SIGTERM');
            await new Promise((r) => proc.on('exit', r));
          }
        },
      };
    }
    if (!/in use/i.test(err)) throw new Error(`dnsmasq failed: ${err}`);
  }
  throw new Error('no free port for dnsmasq');
}
