// Loaded with --import: reports the process's peak RSS when it exits.
// VmHWM from /proc/self/status where there is one: getrusage's maxRSS can carry
// the parent's peak across fork and exec (Linux keeps the larger in the signal
// struct), so a child of a large bench process would report the parent's size.
import { readFileSync } from 'node:fs';

process.on('exit', () => {
  let kb = process.resourceUsage().maxRSS;
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) kb = Number(m[1]);
  } catch {
    // not Linux: maxRSS it is
  }
  process.stderr.write(`\nK8SDIAG_MAXRSS_KB=${kb}\n`);
});
