/** The executable's entry (bin/k8sdiag.js and the one-file bundle): run the CLI. */
import { fileURLToPath } from 'node:url';
import { main } from './cli.js';
import { setProbeEntry } from './engine/udp.js';

// On a Node version the suite has not run on, the UDP handle's calls are tried first in a child: this file, again.
setProbeEntry(fileURLToPath(import.meta.url));
if (process.env['K8SDIAG_UDP'] === 'probe') await (await import('./engine/udp/probe.js')).runUdpProbe();
else await main();
