/** The first question of a DNS message, read in place: no object per message, for every packet of a capture. */

const TYPE_NAMES: Record<number, string> = { 1: 'A', 28: 'AAAA', 5: 'CNAME', 12: 'PTR', 15: 'MX', 16: 'TXT', 33: 'SRV', 2: 'NS', 6: 'SOA', 65: 'HTTPS', 64: 'SVCB', 255: 'ANY' };
export const typeName = (t: number): string => TYPE_NAMES[t] ?? `TYPE${t}`;

/** The first question's type, set by `questionName`. */
let questionType = 0;

/** The type of the question `questionName` read last. */
export const lastQuestionType = (): number => questionType;

/** The name's bytes, lower-cased and dotted, before one decode: 128 labels of at most 63 bytes and their dots. */
const SCRATCH = Buffer.alloc(128 * 64);

/**
 * The first question's name (ASCII lower case, as RFC 4343 compares names; dotted, no trailing dot), its type then in
 * `lastQuestionType()`; undefined when the bytes do not hold one. The labels are copied into one buffer and decoded
 * once: no string per label, no object per message, for every packet of a capture.
 */
export function questionName(msg: Buffer): string | undefined {
  if (msg.length < 12 || msg[4] === undefined || (msg[4] === 0 && msg[5] === 0)) return undefined;
  let n = 0;
  let p = 12;
  let end = -1;
  for (let hops = 0; hops < 128; hops++) {
    if (p >= msg.length) return undefined;
    const len = msg[p]!;
    if (len === 0) {
      if (end < 0) end = p + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (p + 1 >= msg.length) return undefined;
      if (end < 0) end = p + 2;
      const to = ((len & 0x3f) << 8) | msg[p + 1]!;
      if (to >= p) return undefined; // a pointer must go back
      p = to;
      continue;
    }
    if ((len & 0xc0) !== 0 || p + 1 + len > msg.length) return undefined;
    if (n > 0) SCRATCH[n++] = 0x2e;
    for (let i = p + 1, stop = p + 1 + len; i < stop; i++) {
      const b = msg[i]!;
      SCRATCH[n++] = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
    }
    p += 1 + len;
  }
  if (end < 0 || end + 4 > msg.length) return undefined;
  questionType = (msg[end]! << 8) | msg[end + 1]!;
  return SCRATCH.toString('latin1', 0, n);
}

/** The first question's name and type; undefined when the bytes do not hold one. */
export function question(msg: Buffer): { name: string; type: number } | undefined {
  const name = questionName(msg);
  return name === undefined ? undefined : { name, type: questionType };
}
