/** The first question of a DNS message, read in place: no object per message, for every packet of a capture. */

const TYPE_NAMES: Record<number, string> = { 1: 'A', 28: 'AAAA', 5: 'CNAME', 12: 'PTR', 15: 'MX', 16: 'TXT', 33: 'SRV', 2: 'NS', 6: 'SOA', 65: 'HTTPS', 64: 'SVCB', 255: 'ANY' };
export const typeName = (t: number): string => TYPE_NAMES[t] ?? `TYPE${t}`;

/** The first question's type, set by `questionName`. */
let questionType = 0;

/** The type of the question `questionName` read last. */
export const lastQuestionType = (): number => questionType;

/**
 * The first question's name (lower case, dotted, no trailing dot), its type then in `lastQuestionType()`; undefined when
 * the bytes do not hold one. No object per message: this runs for every packet of a capture.
 */
export function questionName(msg: Buffer): string | undefined {
  if (msg.length < 12 || msg[4] === undefined || (msg[4] === 0 && msg[5] === 0)) return undefined;
  let name = '';
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
    const label = msg.toString('latin1', p + 1, p + 1 + len);
    name = name === '' ? label : `${name}.${label}`;
    p += 1 + len;
  }
  if (end < 0 || end + 4 > msg.length) return undefined;
  questionType = (msg[end]! << 8) | msg[end + 1]!;
  return name.toLowerCase();
}

/** The first question's name and type; undefined when the bytes do not hold one. */
export function question(msg: Buffer): { name: string; type: number } | undefined {
  const name = questionName(msg);
  return name === undefined ? undefined : { name, type: questionType };
}
