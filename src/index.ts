/** k8sdiag as a library: every command's typed core, without the CLI. */
export * from './stats/index.js';
export * from './findings.js';
export { UserError, InputError, UsageError } from './errors.js';
export { parseResolvConf } from './resolv/parse.js';
export type { ResolvConf, ResolvOptions, Libc, ParseContext } from './resolv/parse.js';
export { expandName, checkName } from './resolv/expand.js';
export type { Expansion, Candidate, Query, QueryType } from './resolv/expand.js';
export { resolvFindings, NODELOCALDNS_IP, KUBELET_SEARCH_LIMITS } from './resolv/findings.js';
export { parseConntrackInput } from './conntrack/parse.js';
export type { ConntrackInput, StatsSource, KernelLog } from './conntrack/parse.js';
export { buildView, conntrackFindings } from './conntrack/analyse.js';
export type { ConntrackView, TableState, WatchDeltas } from './conntrack/analyse.js';
export { readLive } from './conntrack/live.js';
export { runResolv } from './commands/resolv.js';
export type { ResolvResult, ResolvCommandInput } from './commands/resolv.js';
export { runConntrack } from './commands/conntrack.js';
export type { ConntrackResult, ConntrackCommandInput } from './commands/conntrack.js';
