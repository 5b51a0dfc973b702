/** Bytes to text, and text that is not text: what every parser of piped input needs, with no I/O. */

/** UTF-8 where the bytes are UTF-8; otherwise Latin-1, which never fails and keeps every byte. */
export function decodeText(buf: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1');
  }
}

/**
 * Text that is not text: NUL bytes, or more than 1% control characters in its
 * first 64 KiB. Judged by content, not by the odd non-UTF-8 byte.
 */
export function looksBinary(text: string): boolean {
  const n = Math.min(text.length, 65_536);
  let ctrl = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) return true;
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 0x7f) ctrl++;
  }
  return ctrl > Math.max(2, n / 100);
}

/** Every control character shown escaped (\x1b, \x0d): nothing read from an input can move a terminal's cursor or colour it. */
export function escapeControls(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Echoed input made safe for a terminal: control bytes escaped (newline and tab too), and cut. */
export function printable(s: string, max = 160): string {
  // eslint-disable-next-line no-control-regex
  const safe = s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return safe.length > max ? `${safe.slice(0, max)}... (${s.length} characters)` : safe;
}
