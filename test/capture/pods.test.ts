/** --pods: pod IPs to namespace/name from kubectl's JSON and wide tables, as kubectl prints them. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPods } from '../../src/capture/pods.js';

// Made in a hook its cleanup pairs: a file whose tests all skip leaves nothing behind.
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8sdiag-pods-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('readPods', () => {
  it('kubectl get pods -A -o json: every podIPs entry, host-network pods left out', async () => {
    const doc = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { metadata: { name: 'web-1', namespace: 'shop' }, spec: {}, status: { podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }, { ip: 'fd00:10:244:1::7' }] } },
        { metadata: { name: 'coredns-5d78c9869d-abcde', namespace: 'kube-system' }, spec: {}, status: { podIP: '10.244.0.3' } },
        { metadata: { name: 'kube-proxy-x', namespace: 'kube-system' }, spec: { hostNetwork: true }, status: { podIP: '192.168.1.10', podIPs: [{ ip: '192.168.1.10' }] } },
        { metadata: { name: 'pending', namespace: 'shop' }, spec: {}, status: {} },
      ],
    };
    const m = await readPods(file('pods.json', JSON.stringify(doc, null, 4)));
    expect(Object.fromEntries(m)).toEqual({ '10.244.1.7': 'shop/web-1', 'fd00:10:244:1::7': 'shop/web-1', '10.244.0.3': 'kube-system/coredns-5d78c9869d-abcde' });
  });

  it('kubectl get pods -A -o wide: the NAMESPACE, NAME and IP columns; <none> skipped', async () => {
    const wide = [
      'NAMESPACE     NAME                       READY   STATUS    RESTARTS   AGE   IP           NODE     NOMINATED NODE   READINESS GATES',
      'kube-system   coredns-5d78c9869d-abcde   1/1     Running   0          3d    10.244.0.3   node-a   <none>           <none>',
      'shop          web-1                      1/1     Running   2 (1h ago) 3d    10.244.1.7   node-b   <none>           <none>',
      'shop          pending                    0/1     Pending   0          1m    <none>       <none>   <none>           <none>',
    ].join('\n');
    const m = await readPods(file('pods.txt', wide));
    expect(m.get('10.244.0.3')).toBe('kube-system/coredns-5d78c9869d-abcde');
    expect(m.get('10.244.1.7')).toBe('shop/web-1'); // its RESTARTS cell has spaces: columns are read where their headers start
    expect(m.has('<none>')).toBe(false);
  });

  it('neither: one clear error', async () => {
    await expect(readPods(file('junk.txt', 'hello\nworld\n'))).rejects.toThrow(/--pods: neither JSON nor a table/);
    await expect(readPods(file('bad.json', '{"items": 5}'))).rejects.toThrow(/--pods: a JSON document without items/);
  });
});
