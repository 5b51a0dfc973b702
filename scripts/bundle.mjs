// One-file build for debug pods and nodes: `node k8sdiag.mjs ...` needs only node.
import { readFileSync, chmodSync } from 'node:fs';
import { build } from 'esbuild';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = 'dist/k8sdiag.mjs';
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  minify: false,
  legalComments: 'none',
  define: { __K8SDIAG_VERSION__: JSON.stringify(pkg.version) },
  banner: {
    // CommonJS dependencies (cli-table3) need require() inside an ES module.
    js: "#!/usr/bin/env node\nimport { createRequire as __k8sdiagCreateRequire } from 'node:module';\nconst require = __k8sdiagCreateRequire(import.meta.url);",
  },
});
chmodSync(outfile, 0o755);
console.log(`wrote ${outfile}`);
