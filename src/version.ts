/** The tool's version: from package.json, or defined by the one-file bundle (which ships without it). */
import { readFileSync } from 'node:fs';

declare const __K8SDIAG_VERSION__: string | undefined;

export const VERSION: string =
  typeof __K8SDIAG_VERSION__ === 'string'
    ? __K8SDIAG_VERSION__
    : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
