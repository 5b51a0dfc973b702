/**
 * The fleet files: every manifest validated offline against the Kubernetes API
 * schemas (kubernetes-models) with its invariants checked; the
 * node-problem-detector config parsed and every command it names run as NPD
 * would; the Dockerfile parsed (dockerfile-ast); the bundle run alone as the
 * image installs it.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { DockerfileParser } from 'dockerfile-ast';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { canUseNetns, netnsPerTest } from '../helpers/netns.js';
import { BIN } from '../helpers/run.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const version = (JSON.parse(read('package.json')) as { version: string }).version;

type Container = { image: string; args?: string[]; command?: string[]; env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>; securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } }; resources?: { requests?: Record<string, string>; limits?: Record<string, string> } };
type PodSpec = { hostNetwork?: boolean; dnsPolicy?: string; tolerations?: unknown[]; securityContext?: Record<string, unknown>; containers: Container[] };

function manifest(file: string): Record<string, unknown> {
  const docs = parseAllDocuments(read(`deploy/${file}`));
  expect(docs).toHaveLength(1);
  expect(docs[0]!.errors).toEqual([]);
  return docs[0]!.toJS() as Record<string, unknown>;
}

function checkContainer(c: Container): void {
  expect(c.image).toBe(`ghcr.io/k8sdiag/k8sdiag:${version}`);
  expect(c.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
  expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
  expect(c.securityContext?.capabilities?.drop).toEqual(['ALL']);
  expect(Object.keys(c.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
  expect(Object.keys(c.resources?.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
}

describe('deploy/ manifests', () => {
  it('the namespace validates', () => {
    expect(() => new Namespace(manifest('namespace.yaml') as never).validate()).not.toThrow();
  });

  it('the metrics DaemonSet: valid; the same invariants; it writes only into the textfile directory', () => {
    const m = manifest('daemonset-prometheus.yaml');
    expect(() => new DaemonSet(m as never).validate()).not.toThrow();
    const spec = (m as { spec: { template: { spec: PodSpec & { volumes: Array<{ hostPath?: { path: string } }> } } } }).spec.template.spec;
    expect(spec.hostNetwork).toBe(true);
    const c = spec.containers[0]!;
    checkContainer(c);
    expect(c.securityContext?.capabilities?.add?.sort()).toEqual(['NET_ADMIN', 'SYSLOG']);
    expect(spec.volumes.map((v) => v.hostPath?.path)).toEqual(['/var/lib/node_exporter/textfile']);
    expect(c.args?.join(' ')).toMatch(/conntrack --live -o prom .* dnsbench --resolv .* -o prom/);
    // watch beside it: the capabilities tcpdump needs, and nothing else.
    const w = spec.containers[1]!;
    checkContainer(w);
    expect(w.securityContext?.capabilities?.add?.sort()).toEqual(['NET_ADMIN', 'NET_RAW']);
    expect(w.args?.join(' ')).toMatch(/k8sdiag watch --duration 60 -o prom/);
  });

  it('the DaemonSet: valid; host network, the two capabilities it needs and no others, every node', () => {
    const m = manifest('daemonset.yaml');
    expect(() => new DaemonSet(m as never).validate()).not.toThrow();
    const spec = (m as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
    expect(spec.hostNetwork).toBe(true);
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    const c = spec.containers[0]!;
    checkContainer(c);
    expect(c.securityContext?.capabilities?.add?.sort()).toEqual(['NET_ADMIN', 'SYSLOG']);
    expect(c.args?.join(' ')).toMatch(/k8sdiag doctor -o json/);
  });

  it('the drops DaemonSet: valid; only on the nodes labelled for it; the capabilities conntrack -E and bpftrace need, no others; tracefs read-only', () => {
    const m = manifest('daemonset-drops.yaml');
    expect(() => new DaemonSet(m as never).validate()).not.toThrow();
    const spec = (m as { spec: { template: { spec: PodSpec & { nodeSelector?: Record<string, string>; volumes: Array<{ hostPath?: { path: string } }> } } } }).spec.template.spec;
    expect(spec.hostNetwork).toBe(true);
    expect(spec.nodeSelector).toEqual({ 'k8sdiag.io/drops': 'true' });
    const c = spec.containers[0]! as Container & { volumeMounts?: Array<{ mountPath: string; readOnly?: boolean }> };
    checkContainer(c);
    expect(c.securityContext?.capabilities?.add?.sort()).toEqual(['BPF', 'NET_ADMIN', 'PERFMON', 'SYS_ADMIN', 'SYS_RESOURCE']);
    expect(c.volumeMounts).toEqual([{ name: 'tracefs', mountPath: '/sys/kernel/tracing', readOnly: true }]);
    expect(spec.volumes.map((v) => v.hostPath?.path)).toEqual(['/sys/kernel/tracing']);
    expect(c.args?.join(' ')).toMatch(/k8sdiag drops --duration 60 -o json/);
  });

  for (const file of ['job.yaml', 'cronjob.yaml']) {
    it(`${file}: valid; the pod network (ClusterFirst), non-root, no capabilities`, () => {
      const m = manifest(file);
      const spec = file === 'job.yaml'
        ? (expect(() => new Job(m as never).validate()).not.toThrow(), (m as { spec: { template: { spec: PodSpec } } }).spec.template.spec)
        : (expect(() => new CronJob(m as never).validate()).not.toThrow(), (m as { spec: { jobTemplate: { spec: { template: { spec: PodSpec } } } } }).spec.jobTemplate.spec.template.spec);
      expect(spec.hostNetwork).toBeUndefined();
      expect(spec.dnsPolicy).toBe('ClusterFirst');
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true });
      const c = spec.containers[0]!;
      checkContainer(c);
      expect(c.securityContext?.capabilities?.add).toBeUndefined();
      expect(c.args?.[0]).toBe('dnsbench');
    });
  }

  it('every k8sdiag command line in the manifests is accepted by the CLI (flags and values checked, nothing run)', async () => {
    const { buildProgram } = await import('../../src/cli.js');
    const lines: string[][] = [];
    for (const file of ['job.yaml', 'cronjob.yaml']) lines.push(JSON.parse(/"args":(\[[^\]]*\])/.exec(JSON.stringify(manifest(file)))?.[1] ?? '[]') as string[]);
    const daemon = /k8sdiag (doctor[^;]*);/.exec(JSON.stringify(manifest('daemonset.yaml')))?.[1];
    lines.push(daemon!.trim().split(/\s+/));
    lines.push(/k8sdiag (drops[^;]*);/.exec(JSON.stringify(manifest('daemonset-drops.yaml')))![1]!.trim().split(/\s+/));
    for (const m of JSON.stringify(manifest('daemonset-prometheus.yaml')).matchAll(/k8sdiag ((?:conntrack|dnsbench|watch)[^>]*)>/g)) lines.push(m[1]!.trim().split(/\s+/));
    for (const args of lines) {
      const program = buildProgram();
      let ran = '';
      for (const c of program.commands) c.action(() => { ran = c.name(); });
      await program.parseAsync(['node', 'k8sdiag', ...args]);
      expect(ran).toBe(args[0]);
    }
    // The check has teeth: an unknown flag is refused.
    const p = buildProgram();
    p.commands.forEach((c) => c.exitOverride().configureOutput({ writeErr: () => {} }));
    await expect(p.parseAsync(['node', 'k8sdiag', 'dnsbench', '--bogus'])).rejects.toThrow(/unknown option/);
  });
});

const usable = await canUseNetns();
const newNetns = netnsPerTest();

describe('node-problem-detector custom plugin', () => {
  const cfg = JSON.parse(read('deploy/npd/k8sdiag-monitor.json')) as {
    plugin: string; pluginConfig: { invoke_interval: string; timeout: string; max_output_length: number };
    source: string; conditions: Array<{ type: string; reason: string; message: string }>;
    rules: Array<{ type: string; condition: string; reason: string; path: string; args: string[]; timeout: string }>;
  };

  it('parses, and every rule names a declared condition and the image\'s k8sdiag', () => {
    expect(cfg.plugin).toBe('custom');
    expect(cfg.pluginConfig.max_output_length).toBeGreaterThan(80);
    const types = cfg.conditions.map((c) => c.type);
    expect(types).toEqual(['ConntrackInsertFailing', 'DNSStalls']);
    for (const r of cfg.rules) {
      expect(types).toContain(r.condition);
      expect(r.type).toBe('permanent');
      expect(r.path).toBe('/usr/local/bin/k8sdiag');
      expect(r.args).toContain('line');
    }
  });

  it.skipIf(!usable)('every command it names exits 0, 1 or 2 with one line on stdout (NPD: OK, problem, unknown)', async () => {
    const n = await newNetns('npd');
    for (const r of cfg.rules) {
      // A shorter watch for the test; the rest as configured.
      const args = r.args.map((a, i) => (r.args[i - 1] === '--watch' ? '1' : r.args[i - 1] === '--budget' ? '5' : a));
      const res = await n.exec(process.execPath, [BIN, ...args], { timeout: 60_000 });
      expect([0, 1, 2], `${args.join(' ')}: ${res.stderr}`).toContain(res.exitCode);
      const lines = res.stdout.trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]!.length).toBeLessThanOrEqual(cfg.pluginConfig.max_output_length + 400);
    }
  });
});

describe('the image', () => {
  it('Dockerfile: base image pinned by tag, the tools, the bundle copied, entrypoint, root', () => {
    const df = DockerfileParser.parse(read('Dockerfile'));
    const from = df.getFROMs()[0]!;
    expect(from.getImageName()).toBe('node');
    expect(from.getImageTag()).toMatch(/^\d+\.\d+\.\d+-alpine\d+\.\d+$/);
    const instr = df.getInstructions().map((i) => [i.getKeyword(), i.getArgumentsContent() ?? ''] as const);
    const runs = instr.filter(([k]) => k === 'RUN').map(([, a]) => a).join(' ');
    for (const pkg of ['conntrack-tools', 'iptables', 'iptables-legacy', 'nftables', 'ipvsadm', 'iproute2', 'tcpdump', 'bpftrace']) expect(runs).toContain(pkg);
    expect(instr.find(([k]) => k === 'COPY')?.[1]).toMatch(/^dist\/k8sdiag\.mjs /);
    expect(instr.find(([k]) => k === 'ENTRYPOINT')?.[1]).toBe('["k8sdiag"]');
    // Root, explicitly: kubectl debug's profiles add capabilities that apply to uid 0 only (recipes.test.ts).
    expect(instr.filter(([k]) => k === 'USER').at(-1)?.[1]).toBe('0:0');
  });

  it('the bundle runs alone as the image installs it: an .mjs file in an empty folder, called through a symlink', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8sdiag-image-'));
    try {
      mkdirSync(join(dir, 'lib'));
      mkdirSync(join(dir, 'bin'));
      copyFileSync(join(root, 'dist/k8sdiag.mjs'), join(dir, 'lib/k8sdiag.mjs'));
      symlinkSync('../lib/k8sdiag.mjs', join(dir, 'bin/k8sdiag'));
      const env = { PATH: `${process.execPath.replace(/\/node$/, '')}:/usr/bin:/bin`, NO_COLOR: '1' };
      const v = await execa(join(dir, 'bin/k8sdiag'), ['--version'], { cwd: dir, reject: false, env, extendEnv: false });
      expect(v.exitCode, String(v.stderr)).toBe(0);
      expect(String(v.stdout).trim()).toBe(version);
      const r = await execa(join(dir, 'bin/k8sdiag'), ['resolv', '--file', '-', '-o', 'json', 'google.com'], { cwd: dir, reject: false, env, extendEnv: false, input: 'nameserver 10.96.0.10\n' });
      expect(JSON.parse(String(r.stdout)).candidates.length).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
