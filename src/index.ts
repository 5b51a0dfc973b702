/**
 * k8sdiag as a library: every command is a plain function from an input to a
 * typed result (what `k8sdiag ... --json` prints), plus the cores they are
 * built from. Nothing here prints or exits.
 */
export * from './stats/index.js';
export * from './findings.js';
export { UserError, InputError, UsageError } from './errors.js';
export type { ResultHeader } from './header.js';
export { SCHEMAS } from './header.js';
export { VERSION } from './version.js';
export type { Source, RunControl } from './input.js';
export { chooseSource, loadSource, LIMITS } from './input.js';

// Commands: input -> typed result.
export { runDnsbench, prepareDnsbench, parseQueriesFile, unreachableReason } from './commands/dnsbench.js';
export type { DnsbenchInput, DnsbenchResult, DnsbenchFlags } from './commands/dnsbench.js';
export { runConntrack } from './commands/conntrack.js';
export type { ConntrackResult, ConntrackCommandInput } from './commands/conntrack.js';
export { runResolv } from './commands/resolv.js';
export type { ResolvResult, ResolvCommandInput } from './commands/resolv.js';
export { runSvc } from './commands/svc.js';
export type { SvcResult, SvcInput } from './commands/svc.js';
export { runServe } from './commands/serve.js';
export type { ServeInput, ServeResult } from './commands/serve.js';

// The cores.
export { Responder, parseFault } from './dns/responder.js';
export type { ResponderOptions, ResponderStats, SeenQuery, FaultRule } from './dns/responder.js';
export { runEngine } from './engine/engine.js';
export type { EngineOptions, EngineResult, QuerySpec, SlowEvent, Progress } from './engine/engine.js';
export { runResolverEmulation } from './engine/resolver.js';
export type { ResolverEmulationOptions, LookupStats, LookupOutcome } from './engine/resolver.js';
export { parseResolvConf } from './resolv/parse.js';
export type { ResolvConf, ResolvOptions, Libc, ParseContext } from './resolv/parse.js';
export { expandName, checkName } from './resolv/expand.js';
export type { Expansion, Candidate, Query, QueryType } from './resolv/expand.js';
export { resolvFindings, KUBELET_SEARCH_LIMITS } from './resolv/findings.js';
export { NODELOCALDNS_IP, looksLikeClusterIp } from './kubernetes.js';
export { parseConntrackInput } from './conntrack/parse.js';
export type { ConntrackInput, StatsSource, KernelLog } from './conntrack/parse.js';
export { buildView, conntrackFindings } from './conntrack/analyse.js';
export type { ConntrackView, TableState, WatchDeltas } from './conntrack/analyse.js';
export { readLive } from './host/conntrack.js';
export { parseDumps } from './kubeproxy/rules.js';
export type { ParsedDumps } from './kubeproxy/rules.js';
export { analyseDumps } from './kubeproxy/analyse.js';
export type { ServiceReport, SvcAnalysis, ProxyMode } from './kubeproxy/analyse.js';
