/**
 * The engine's two ways onto a UDP socket (src/engine/udp.ts): through Node's
 * handle, with the send outcome read at once, and through the public API.
 * Both must give the same accounting, for sends the kernel takes at once,
 * sends libuv queues (node --test-udp-no-try-send queues every one), and
 * sends the kernel refuses (a firewall's EPERM, a refusal's ECONNREFUSED).
 */
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { runEngine } from '../../src/engine/engine.js';
import type { EngineOptions } from '../../src/engine/engine.js';
import { QUEUED, SENT, bindingOf, handlePathVerified, openEndpoint, udpIo } from '../../src/engine/udp.js';
import { parseFault } from '../../src/dns/responder.js';
import { engineOptions } from '../helpers/engine.js';
import { startResponder } from '../helpers/responders.js';
import { closedUdpPort } from '../helpers/servers.js';
import { canUseNetns, netnsPerTest } from '../helpers/netns.js';
import { BIN, run } from '../helpers/run.js';
import { emulateAt } from '../helpers/emulate.js';
import { recordTotal } from '../../src/stats/index.js';

const PATHS = ['handle', 'public'] as const;

async function withPath<T>(path: (typeof PATHS)[number], fn: () => Promise<T>): Promise<T> {
  const before = process.env['K8SDIAG_UDP'];
  process.env['K8SDIAG_UDP'] = path;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env['K8SDIAG_UDP'];
    else process.env['K8SDIAG_UDP'] = before;
  }
}

/** More in flight and more queries than the engine tests' defaults, over four sockets, so that sends queue. */
const opts = (port: number, o: Partial<EngineOptions> = {}): EngineOptions => engineOptions(port, { concurrency: 50, total: 2000, timeoutMs: 300, sockets: 4, ...o });

async function connectedPair(): Promise<{ a: dgram.Socket; b: dgram.Socket; close: () => void }> {
  const b = dgram.createSocket('udp4');
  await new Promise<void>((r) => b.bind(0, '127.0.0.1', r));
  const a = dgram.createSocket('udp4');
  await new Promise<void>((r) => a.connect(b.address().port, '127.0.0.1', r));
  return { a, b, close: () => [a, b].forEach((s) => s.close()) };
}

describe('udpIo', () => {
  it('uses the handle on this Node, the public API when told, and delivers the same datagram either way', async () => {
    for (const path of PATHS) {
      const { a, b, close } = await connectedPair();
      try {
        const got: Array<[number, string]> = [];
        const done: Array<[number, string | undefined]> = [];
        let arrived: () => void = () => {};
        const echoed = new Promise<void>((r) => (arrived = r));
        b.on('message', (m, rinfo) => b.send(m, rinfo.port, rinfo.address));
        const io = await withPath(path, async () =>
          udpIo([a], 2, {
            message: (s, msg) => {
              got.push([s, msg.toString()]);
              arrived();
            },
            error: () => {},
            sendDone: (slot, code) => done.push([slot, code]),
          }),
        );
        expect(io.path).toBe(path);
        const r = io.send(0, 1, Buffer.from(`hello ${path}`));
        // An idle socket: the kernel takes the datagram at once, and the handle says so.
        expect(r).toBe(path === 'handle' ? SENT : QUEUED);
        await echoed;
        expect(got).toEqual([[0, `hello ${path}`]]);
        // The public API always completes through the slot's callback; the handle only for a queued send.
        await new Promise((res) => setImmediate(res));
        expect(done).toEqual(path === 'public' ? [[1, undefined]] : []);
      } finally {
        close();
      }
    }
  });
});

describe('openEndpoint (resolver mode\'s one socket per query)', () => {
  it.each(PATHS)('%s path: connected and unconnected, IPv4 and IPv6: the reply, its sender, the local port', async (path) => {
    for (const [family, host] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
      const echo = dgram.createSocket(family);
      await new Promise<void>((r) => echo.bind(0, host, r));
      echo.on('message', (m, ri) => echo.send(m, ri.port, ri.address));
      const peer = { host, port: echo.address().port };
      try {
        for (const connectTo of [peer, undefined]) {
          const got: string[] = [];
          let arrived: () => void = () => {};
          const replied = new Promise<void>((r) => (arrived = r));
          const ep = await withPath(path, async () =>
            openEndpoint(family, connectTo, {
              message: (msg, from) => {
                got.push(`${msg.toString()} from ${from.address}:${from.port}`);
                arrived();
              },
              error: () => {},
              sendFailed: () => {},
            }),
          );
          try {
            expect(ep.path).toBe(path);
            expect(ep.port).toBeGreaterThan(0);
            ep.send(Buffer.from('q'), connectTo ? undefined : peer, 'q');
            await replied;
            expect(got).toEqual([`q from ${host}:${peer.port}`]);
          } finally {
            ep.close();
          }
        }
      } finally {
        echo.close();
      }
    }
  });

  it.each(PATHS)('%s path: a refused peer is reported once as ECONNREFUSED; a bad address is an error with its code', async (path) => {
    const port = await closedUdpPort();
    const codes: string[] = [];
    let reported: () => void = () => {};
    const done = new Promise<void>((r) => (reported = r));
    const failed: string[] = [];
    const ep = await withPath(path, async () =>
      openEndpoint<string>('udp4', { host: '127.0.0.1', port }, {
        message: () => {},
        error: (code) => {
          codes.push(code);
          reported();
        },
        sendFailed: (_tag, code) => failed.push(code),
      }),
    );
    try {
      ep.send(Buffer.from('q'), undefined, 'q');
      await done;
      expect(codes).toEqual(['ECONNREFUSED']);
      expect(failed).toEqual([]);
    } finally {
      ep.close();
    }
    const err = await withPath(path, async () => openEndpoint('udp6', { host: 'fe80::1%k8sdiag-no-such-if', port: 53 }, { message: () => {}, error: () => {}, sendFailed: () => {} })).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toMatch(/^(EINVAL|ENODEV|ENXIO|EADDRNOTAVAIL|ENOTFOUND)$/);
  });
});

describe('udpIo with every send queued (node --test-udp-no-try-send)', () => {
  it('the handle path says QUEUED, then completes each slot once, and a slot\'s request can be used again', async () => {
    // A child Node with the flag, using the built module: two rounds over the same four slots.
    const script = `
      import dgram from 'node:dgram';
      import { udpIo } from ${JSON.stringify(new URL('../../dist/engine/udp.js', import.meta.url).href)};
      const b = dgram.createSocket('udp4'); await new Promise((r) => b.bind(0, '127.0.0.1', r));
      const a = dgram.createSocket('udp4'); await new Promise((r) => a.connect(b.address().port, '127.0.0.1', r));
      let got = 0; b.on('message', () => got++);
      const done = [];
      const io = udpIo([a], 4, { message() {}, error() {}, sendDone: (s, c) => done.push([s, c ?? null]) });
      const rounds = [];
      for (let k = 0; k < 2; k++) {
        rounds.push([0, 1, 2, 3].map((i) => io.send(0, i, Buffer.from('x' + i))));
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log(JSON.stringify({ path: io.path, rounds, done, got }));
      a.close(); b.close();`;
    const { execa } = await import('execa');
    const r = await execa(process.execPath, ['--test-udp-no-try-send', '--input-type=module', '-e', script], { reject: false, timeout: 10_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const out = JSON.parse(String(r.stdout)) as { path: string; rounds: number[][]; done: Array<[number, string | null]>; got: number };
    expect(out.path).toBe('handle');
    expect(out.rounds).toEqual([[QUEUED, QUEUED, QUEUED, QUEUED], [QUEUED, QUEUED, QUEUED, QUEUED]]);
    const once = [[0, null], [1, null], [2, null], [3, null]];
    expect(out.done).toEqual([...once, ...once]);
    expect(out.got).toBe(8);
  });
});

describe.each(PATHS)('engine through the %s path', (path) => {
  it('every query answered, exactly once, with a server that drops 1 in 10 the rest time out', async () => {
    await withPath(path, async () => {
      const r = await startResponder({ faults: [parseFault('drop@every=10')] });
      const res = await runEngine(opts(r.udpPort));
      expect(res.sent).toBe(2000);
      expect(res.answered).toBe(1800);
      expect(res.timeouts).toBe(200);
      expect(recordTotal(res.errors)).toBe(0);
      expect(res.rcodes).toEqual({ NOERROR: 1800 });
    });
  });

  it('a closed port: every query ends as ECONNREFUSED, none twice, none as a timeout', async () => {
    await withPath(path, async () => {
      const port = await closedUdpPort();
      const res = await runEngine(opts(port, { total: 500 }));
      expect(res.sent).toBe(500);
      expect(res.errors).toEqual({ ECONNREFUSED: 500 });
      expect(res.timeouts + res.answered).toBe(0);
    });
  });
});

describe.each(PATHS)('resolver mode through the %s path (its sockets are their endpoints\' event handlers)', (path) => {
  const CONF = 'nameserver 127.0.0.1\nsearch a.test b.test\noptions ndots:5 timeout:1 attempts:1\n';

  it('glibc and musl: every candidate answered, each datagram counted once, a socket per candidate', async () => {
    const r = await startResponder({ zones: ['google.com'] });
    for (const libc of ['glibc', 'musl'] as const) {
      const res = await withPath(path, () => emulateAt([{ host: '127.0.0.1', port: r.udpPort }], CONF, libc, { concurrency: 4, total: 40 }));
      expect(res.lookups.outcomes, libc).toEqual({ answer: 40 });
      // google.com.a.test, google.com.b.test (NXDOMAIN), then google.com: 3 names x (A + AAAA) per lookup.
      expect(res.engine, libc).toMatchObject({ sent: 240, answered: 240, timeouts: 0, errors: {} });
    }
    expect(r.seen.length).toBe(480);
  });

  it('a wait that times out, then a reply to the resend; and a refused nameserver ends the lookup as refused', async () => {
    // The AAAA's reply comes 1.3 s late: the pair times out with one reply (1 s), glibc switches to single-request and
    // resends on the same socket with the same IDs, and the late reply answers the resent AAAA, as in glibc.
    const slow = await startResponder({ zones: ['google.com'], faults: ['delay:1300@type=AAAA'].map(parseFault) });
    const late = await withPath(path, () => emulateAt([{ host: '127.0.0.1', port: slow.udpPort }], 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n', 'glibc', { names: ['google.com.'] }));
    expect(late.lookups.outcomes).toEqual({ answer: 1 });
    expect(late.lookups.modeSwitches).toEqual({ singleRequest: 1, singleRequestReopen: 0 });
    expect(late.engine).toMatchObject({ sent: 4, answered: 3, timeouts: 1 });
    const port = await closedUdpPort();
    const refused = await withPath(path, () => emulateAt([{ host: '127.0.0.1', port }], CONF, 'glibc'));
    expect(refused.lookups.outcomes).toEqual({ refused: 1 });
    expect(refused.engine.errors).toMatchObject({ ECONNREFUSED: expect.any(Number) });
    expect(refused.engine.timeouts).toBe(0);
  });
});

describe('every send queued by libuv (node --test-udp-no-try-send)', () => {
  it.each(PATHS)('%s path: answers and refusals are counted as with sends taken at once', async (path) => {
    const r = await startResponder();
    const ok = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(r.udpPort), '-d', 'a.test', '-n', '3000', '-c', '100', '--json', '--no-progress'], {
      env: { K8SDIAG_UDP: path },
      nodeArgs: ['--test-udp-no-try-send'],
    });
    expect(ok.exitCode, ok.stderr + ok.stdout.slice(0, 3000)).toBe(0);
    const doc = JSON.parse(ok.stdout) as { sent: number; answered: number; timeouts: number };
    expect([doc.sent, doc.answered, doc.timeouts]).toEqual([3000, 3000, 0]);
    expect(r.seen.length).toBe(3000);

    const port = await closedUdpPort();
    const refused = await run(['dnsbench', '--server', '127.0.0.1', '-p', String(port), '-d', 'a.test', '-n', '300', '-c', '30', '--timeout', '0.5', '--json', '--no-progress'], {
      env: { K8SDIAG_UDP: path },
      nodeArgs: ['--test-udp-no-try-send'],
    });
    expect(refused.exitCode, refused.stderr).toBe(2);
    const rd = JSON.parse(refused.stdout) as { sent: number; timeouts: number; errors: Record<string, number> };
    expect(rd.sent).toBe(300);
    expect(rd.errors).toEqual({ ECONNREFUSED: 300 });
    expect(rd.timeouts).toBe(0);
  });
});

const usable = await canUseNetns();
const newNetns = netnsPerTest();

describe.skipIf(!usable)('a firewall that refuses every send (iptables OUTPUT DROP: EPERM at once)', () => {
  it.each(PATHS)('%s path: every query is one EPERM, and --duration still ends the run on time', async (path) => {
    const n = await newNetns('eperm');
    const rule = await n.exec('iptables', ['-A', 'OUTPUT', '-p', 'udp', '--dport', '5353', '-j', 'DROP']);
    expect(rule.exitCode, rule.stderr).toBe(0);
    const env = ['env', `K8SDIAG_UDP=${path}`, 'NO_COLOR=1'];
    const counted = await n.exec(env[0]!, [...env.slice(1), process.execPath, BIN, 'dnsbench', '--server', '127.0.0.1', '-p', '5353', '-d', 'a.test', '-n', '400', '-c', '20', '--json', '--no-progress']);
    expect(counted.exitCode, counted.stderr).toBe(2);
    const doc = JSON.parse(counted.stdout) as { sent: number; errors: Record<string, number>; timeouts: number };
    expect(doc.sent).toBe(400);
    expect(doc.errors).toEqual({ EPERM: 400 });
    expect(doc.timeouts).toBe(0);
    expect(counted.stderr.trim()).toBe('k8sdiag: no answer from 127.0.0.1:5353: 400 x EPERM');

    // No -n: refused sends must not hold the event loop past the deadline.
    const t = performance.now();
    const timed = await n.exec(env[0]!, [...env.slice(1), process.execPath, BIN, 'dnsbench', '--server', '127.0.0.1', '-p', '5353', '-d', 'a.test', '--duration', '1', '-c', '20', '--json', '--no-progress'], { timeout: 10_000 });
    const elapsed = performance.now() - t;
    expect(timed.exitCode, timed.stderr).toBe(2);
    const td = JSON.parse(timed.stdout) as { sent: number; errors: Record<string, number> };
    expect(td.sent).toBeGreaterThan(0);
    expect(td.errors).toEqual({ EPERM: td.sent });
    expect(elapsed).toBeLessThan(8000);
  });
});

describe('the gate on Node\'s UDP handle', () => {
  const real = (): unknown => (process as unknown as { binding(name: string): unknown }).binding('udp_wrap');

  it('takes the binding only with every function it calls', () => {
    expect(bindingOf(real)).not.toBeNull();
    const needed = ['bind', 'bind6', 'connect', 'connect6', 'getsockname', 'recvStart', 'send', 'send6', 'close'];
    for (const missing of [undefined, ...needed]) {
      // A stand-in with every function the module calls is taken; one without any of them is not.
      class UDP {}
      for (const k of needed) if (k !== missing) Object.defineProperty(UDP.prototype, k, { value: () => 0 });
      expect(bindingOf(() => ({ UDP, SendWrap: class {} })) === null, String(missing)).toBe(missing !== undefined);
    }
    expect(bindingOf(() => ({ UDP: real() && undefined }))).toBeNull();
    expect(bindingOf(() => { throw new Error('no such binding'); })).toBeNull();
  });

  it('on a version the suite has not run on, only after the probe succeeded', () => {
    let probed = 0;
    const probe = (ok: boolean) => (): boolean => {
      probed++;
      return ok;
    };
    expect(handlePathVerified(process.version, probe(false))).toBe(true);
    expect(probed).toBe(0);
    expect(handlePathVerified('v99.1.0', probe(false))).toBe(false);
    expect(handlePathVerified('v99.1.0', probe(true))).toBe(true);
    expect(probed).toBe(2);
  });

  it.each([['bin', BIN], ['bundle', 'dist/k8sdiag.mjs']])('the probe, as the %s runs it in a child, passes on this Node', async (_kind, entry) => {
    const { execa } = await import('execa');
    const r = await execa(process.execPath, [entry], { env: { K8SDIAG_UDP: 'probe' }, reject: false, timeout: 20_000 });
    expect([r.exitCode, r.stdout], r.stderr).toEqual([0, 'k8sdiag udp probe: ok']);
  });
});
