/**
 * The cluster recipes as printed in README and docs: every `kubectl debug` line's flags are kubectl's own (its
 * `debug --help`, captured from kubectl 1.32.4), and each node recipe runs with the identity it really gets: the
 * image's user (the Dockerfile's USER, or a --custom file's runAsUser) and the profile's capabilities (kubectl's
 * profiles.go: netadmin adds NET_ADMIN and NET_RAW to the runtime's defaults, sysadmin is privileged), emulated with
 * setpriv in a network namespace that holds kube-proxy's rules. The same capabilities under a non-root user are
 * refused, in one line that says what to do.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DockerfileParser } from 'dockerfile-ast';
import { SecurityContext } from 'kubernetes-models/v1/SecurityContext';
import { netnsGate, netnsPerTest } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';
import { RULES } from '../helpers/lab.js';
import { BIN, readFixture } from '../helpers/run.js';
import { TOOLS, titled } from '../helpers/tools.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(root, p), 'utf8');

/** Every `kubectl debug` command in a fenced block of README.md and docs/*.md, with where it is. */
function recipes(): Array<{ where: string; line: string }> {
  const out: Array<{ where: string; line: string }> = [];
  for (const file of ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]) {
    let fenced = false;
    read(file).split('\n').forEach((l, i) => {
      if (l.startsWith('```')) fenced = !fenced;
      else if (fenced && /^\s*(\$ )?kubectl debug /.test(l)) out.push({ where: `${file}:${i + 1}`, line: l.replace(/^\s*(\$ )?/, '').replace(/\s+&$/, '') });
    });
  }
  return out;
}

/** kubectl's own flags for `debug`, from its help. */
const help = readFixture('kubectl/debug-help-v1.32.4.txt');
const kubectlFlags = new Set([...help.matchAll(/^\s+(?:-(\w), )?--([\w-]+)=/gm)].flatMap((m) => [m[1] ? `-${m[1]}` : '', `--${m[2]}`]).filter(Boolean));
const profiles = JSON.parse(`[${/--profile='legacy':\s*\n\s*Options are (.*)\./.exec(help)![1]!.replace(/ or /, ', ')}]`) as string[];

interface Recipe { node: boolean; profile: string; custom?: string; args: string[] }
function parseRecipe(line: string): Recipe {
  const [kube, command = ''] = line.split(' -- ');
  const words = kube!.split(/\s+/).slice(2);
  const flag = (name: string) => words.find((w) => w.startsWith(`--${name}=`))?.slice(name.length + 3);
  const custom = flag('custom');
  return { node: words.some((w) => w.startsWith('node/')), profile: flag('profile') ?? 'legacy', ...(custom !== undefined ? { custom } : {}), args: command.trim().split(/\s+/) };
}

// The runtime's default capabilities (containerd and Docker), and what kubectl's profiles do to them.
const DEFAULT_CAPS = ['chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap', 'net_bind_service', 'net_raw', 'sys_chroot', 'mknod', 'audit_write', 'setfcap'];
function capsOf(r: Recipe): string[] | 'all' {
  if (r.profile === 'sysadmin') return 'all';
  if (r.profile === 'netadmin') return [...DEFAULT_CAPS, 'net_admin'];
  if (r.profile === 'restricted') return [];
  if (r.profile === 'general' && !r.node) return [...DEFAULT_CAPS, 'sys_ptrace'];
  return DEFAULT_CAPS;
}
/** The user the container runs as: a --custom file's runAsUser, else the image's USER, else root. */
function uidOf(r: Recipe): number {
  if (r.custom !== undefined) {
    const c = parseYaml(read(r.custom)) as { securityContext?: { runAsUser?: number } };
    if (c.securityContext?.runAsUser !== undefined) return c.securityContext.runAsUser;
  }
  const users = DockerfileParser.parse(read('Dockerfile')).getInstructions().filter((i) => i.getKeyword() === 'USER');
  const user = users.at(-1)?.getArgumentsContent()?.split(':')[0] ?? '0';
  return user === 'root' ? 0 : Number(user);
}

/** Run k8sdiag in the namespace as that user with those capabilities (setpriv: no ambient or inherited ones). */
async function runAs(ns: Netns, uid: number, caps: string[] | 'all', args: string[]) {
  const bset = caps === 'all' ? '+all' : ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return ns.exec('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', `--bounding-set=${bset}`, process.execPath, BIN, ...args], { timeout: 30_000 });
}

describe('recipes as printed', () => {
  const all = recipes();

  it('there are pod and node recipes, and each uses only flags and profiles kubectl has', () => {
    expect(all.some((r) => parseRecipe(r.line).node)).toBe(true);
    expect(all.some((r) => !parseRecipe(r.line).node)).toBe(true);
    expect(profiles).toContain('netadmin');
    for (const { where, line } of all) {
      const kube = line.split(' -- ')[0]!;
      const flags = kube.split(/\s+/).slice(2).filter((x) => x.startsWith('-'));
      // Short flags run together (-it) are each one.
      for (const w of flags.flatMap((f) => (/^-\w{2,}$/.test(f) ? [...f.slice(1)].map((c) => `-${c}`) : [f]))) expect(kubectlFlags, `${where}: ${w}`).toContain(w.split('=')[0]);
      expect(profiles, where).toContain(parseRecipe(line).profile);
    }
    // The check has teeth: a flag kubectl lacks is caught.
    expect(kubectlFlags).not.toContain('--privileged');
  });

  it('a --custom file is a valid security context, and gives the restricted recipe a non-root user', () => {
    const customs = all.map((r) => parseRecipe(r.line)).filter((r) => r.custom !== undefined);
    expect(customs.length).toBeGreaterThan(0);
    for (const r of customs) {
      const c = parseYaml(read(r.custom!)) as { securityContext: Record<string, unknown> };
      expect(() => new SecurityContext(c.securityContext as never).validate()).not.toThrow();
      if (r.profile === 'restricted') expect(uidOf(r)).not.toBe(0);
    }
  });
});

const gate = await netnsGate(TOOLS.setpriv, TOOLS.tcpdump);
const newNetns = netnsPerTest();

async function kubeProxyNode(): Promise<Netns> {
  const ns = await newNetns('recipe');
  const r = await ns.exec('iptables-restore', [], { input: RULES });
  expect(r.exitCode, r.stderr).toBe(0);
  return ns;
}

describe('the node recipes run with the identity they get', () => {
  const nodes = recipes().filter((r) => parseRecipe(r.line).node);

  it.skipIf(!gate.ok)(titled('each reads the rules, the conntrack counters and captures DNS: none refused', gate), async () => {
    expect(nodes.length).toBeGreaterThan(0);
    const ns = await kubeProxyNode();
    for (const { where, line } of nodes) {
      const r = parseRecipe(line);
      const uid = uidOf(r);
      const caps = capsOf(r);
      const svc = await runAs(ns, uid, caps, ['svc', '--live', '-o', 'json']);
      expect([0, 1], `${where} (uid ${uid}): ${svc.stderr}`).toContain(svc.exitCode);
      expect((JSON.parse(svc.stdout) as { services: Array<{ clusterIP: string }> }).services.map((s) => s.clusterIP)).toContain('198.18.0.10');
      const ct = await runAs(ns, uid, caps, ['conntrack', '--live', '-o', 'json']);
      expect([0, 1], `${where}: ${ct.stderr}`).toContain(ct.exitCode);
      expect((JSON.parse(ct.stdout) as { sources: string[] }).sources, where).toContain('conntrack -S');
      // An idle namespace: the capture ran and saw no DNS (NO_DNS_SEEN), which is not a refusal.
      const watch = await runAs(ns, uid, caps, ['watch', '--duration', '1', '-o', 'json']);
      expect([0, 1], `${where}: ${watch.stderr}`).toContain(watch.exitCode);
      expect((JSON.parse(watch.stdout) as { capture: { source: string } }).capture.source).toBe('tcpdump -i any');
      expect(watch.stderr).not.toMatch(/permission/i);
    }
  }, 120_000);

  it.skipIf(!gate.ok)(titled('the same capabilities under a non-root user are refused, in one line that says to run as root', gate), async () => {
    const ns = await kubeProxyNode();
    const netadmin = capsOf({ node: true, profile: 'netadmin', args: [] });
    const svc = await runAs(ns, 65532, netadmin, ['svc', '--live']);
    expect(svc.exitCode).toBe(2);
    expect(svc.stderr.split('\n')[0]).toMatch(/^k8sdiag: could not read any rules on this machine: .*permission denied: run as root with NET_ADMIN \(kubectl debug node\/NAME --profile=netadmin/);
    expect(svc.stderr).not.toMatch(/exit code undefined/);
    const watch = await runAs(ns, 65532, netadmin, ['watch', '--duration', '1']);
    expect(watch.exitCode).toBe(2);
    expect(watch.stderr).toMatch(/^k8sdiag: tcpdump cannot capture: .*\nhint: capture needs root with NET_RAW and NET_ADMIN/);
    const ct = await runAs(ns, 65532, netadmin, ['conntrack', '--live', '-o', 'json']);
    const doc = JSON.parse(ct.stdout) as { unavailable: Array<{ source: string; reason: string }> };
    expect(doc.unavailable.find((u) => u.source === 'conntrack -S')?.reason).toMatch(/permission denied: run as root/);
  }, 60_000);
});
