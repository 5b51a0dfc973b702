/**
 * Which of the programs a test runs are on this machine: one helper, so a test is gated on every tool it runs and
 * says which are missing. Without them it skips, the reason in its title; under CI=true (.ci/run installs them all)
 * a missing tool is an error, never a skip.
 */
import { execa } from 'execa';

export interface Tool {
  /** The command, and arguments that make it print its version and exit 0. */
  cmd: string;
  args: string[];
  /** The Debian package it comes in. */
  pkg: string;
}

export const TOOLS = {
  tcpdump: { cmd: 'tcpdump', args: ['--version'], pkg: 'tcpdump' },
  dig: { cmd: 'dig', args: ['-v'], pkg: 'dnsutils' },
  muslGcc: { cmd: 'musl-gcc', args: ['--version'], pkg: 'musl-tools' },
  tshark: { cmd: 'tshark', args: ['--version'], pkg: 'tshark' },
  editcap: { cmd: 'editcap', args: ['--version'], pkg: 'tshark' },
  setpriv: { cmd: 'setpriv', args: ['--version'], pkg: 'util-linux' },
  ip: { cmd: 'ip', args: ['netns', 'list'], pkg: 'iproute2' },
  iptables: { cmd: 'iptables', args: ['--version'], pkg: 'iptables' },
  mergecap: { cmd: 'mergecap', args: ['-h'], pkg: 'tshark' },
  ethtool: { cmd: 'ethtool', args: ['--version'], pkg: 'ethtool' },
  gcc: { cmd: 'gcc', args: ['--version'], pkg: 'gcc' },
  dnsmasq: { cmd: 'dnsmasq', args: ['--version'], pkg: 'dnsmasq-base' },
  bpftrace: { cmd: 'bpftrace', args: ['--version'], pkg: 'bpftrace' },
  conntrack: { cmd: 'conntrack', args: ['--version'], pkg: 'conntrack' },
} as const satisfies Record<string, Tool>;

const seen = new Map<string, Promise<boolean>>();
const present = (t: Tool): Promise<boolean> => {
  let p = seen.get(t.cmd);
  if (p === undefined) {
    p = execa(t.cmd, t.args, { reject: false }).then((r) => r.exitCode === 0, () => false);
    seen.set(t.cmd, p);
  }
  return p;
};

/** Whether every tool is here, and if not, the words a skipped test's title carries. */
export async function need(...tools: Tool[]): Promise<{ ok: boolean; why: string }> {
  const gone: Tool[] = [];
  for (const t of tools) if (!(await present(t))) gone.push(t);
  if (gone.length === 0) return { ok: true, why: '' };
  const why = `skipped: ${gone.map((t) => `${t.cmd} (${t.pkg})`).join(', ')} not installed`;
  if (process.env.CI) throw new Error(`${why}: .ci/run installs them`);
  return { ok: false, why };
}

/**
 * A test file's gate: root (where asked) and every tool. Where it fails, the reason is also said once on stderr, so
 * a run that skips says why in its log as well as in the skipped titles.
 */
export async function gate(opts: { root?: boolean }, ...tools: Tool[]): Promise<{ ok: boolean; why: string }> {
  const notRoot = opts.root === true && process.getuid?.() !== 0;
  if (notRoot && process.env.CI) throw new Error('these tests need root (CI runs as root)');
  const g = await need(...tools);
  const why = notRoot ? `skipped: needs root${g.ok ? '' : `; ${g.why.replace(/^skipped: /, '')}`}` : g.why;
  const ok = !notRoot && g.ok;
  if (!ok) console.warn(`k8sdiag tests: ${why}`);
  return { ok, why };
}

/** A test's title, with why it is skipped where it is. */
export const titled = (title: string, gate: { ok: boolean; why: string }): string => (gate.ok ? title : `${title} (${gate.why})`);
