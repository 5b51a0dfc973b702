/**
 * Text for a terminal: what came from the input (names, log lines, file contents) may hold escape sequences that set
 * a window title, move the cursor or clear the screen, and carriage returns that overwrite a line. Every control
 * character but newline and tab is shown escaped (\x1b, \r); the colour sequences (ESC [ ... m) this tool's own
 * renderers write are kept, and can do no more than colour.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /\x1b\[[0-9;]*m|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (m) => (m.length > 1 ? m : `\\x${m.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
