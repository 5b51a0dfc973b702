// Loaded with --import: reports the process's peak RSS when it exits.
process.on('exit', () => {
  process.stderr.write(`\nK8SDIAG_MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
});
