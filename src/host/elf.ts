/**
 * The program interpreter (PT_INTERP) of an ELF executable: the dynamic loader the program asked for, which names its
 * libc (/lib/ld-musl-x86_64.so.1, /lib64/ld-linux-x86-64.so.2). Reads only the bytes given, checks every offset.
 */

const PT_INTERP = 3;

/**
 * The interpreter path of the ELF image whose first bytes are `head`; null for an executable without one (static, as
 * Go programs and the pause container are); undefined when `head` is not an ELF image or is cut before the answer.
 */
export function elfInterpreter(head: Buffer): string | null | undefined {
  if (head.length < 52 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return undefined;
  const is64 = head[4] === 2;
  if (!is64 && head[4] !== 1) return undefined;
  const le = head[5] === 1;
  if (!le && head[5] !== 2) return undefined;
  if (is64 && head.length < 64) return undefined;
  const u16 = (o: number): number => (le ? head.readUInt16LE(o) : head.readUInt16BE(o));
  const u32 = (o: number): number => (le ? head.readUInt32LE(o) : head.readUInt32BE(o));
  // Offsets past 2^53 are not in any head we read: read the 64-bit fields as numbers and let the bounds refuse them.
  const word = (o: number): number => (is64 ? Number(le ? head.readBigUInt64LE(o) : head.readBigUInt64BE(o)) : u32(o));
  const phoff = word(is64 ? 0x20 : 0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  if (phentsize < (is64 ? 56 : 32)) return phnum === 0 ? null : undefined;
  for (let k = 0; k < phnum; k++) {
    const ph = phoff + k * phentsize;
    if (ph + phentsize > head.length) return undefined;
    if (u32(ph) !== PT_INTERP) continue;
    const off = word(ph + (is64 ? 0x08 : 0x04));
    const size = word(ph + (is64 ? 0x20 : 0x10));
    if (size === 0 || size > 4096 || off + size > head.length) return undefined;
    const nul = head.indexOf(0, off);
    const end = nul >= off && nul < off + size ? nul : off + size;
    return head.toString('latin1', off, end);
  }
  return null;
}
