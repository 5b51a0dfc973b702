/** The executable's entry (bin/k8sdiag.js and the one-file bundle): run the CLI. */
import { main } from './cli.js';

await main();
