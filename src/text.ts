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
