/**
 * `--json` output, written piece by piece: byte for byte what
 * `JSON.stringify(value, null, 2)` gives, but a long array at the top level
 * (svc's services, for one) goes out a few elements at a time, so a 20 MB
 * document never exists as one string (svc --json on 5000 Services is
 * 18.5 MB: written whole, it would raise the peak RSS by a fifth).
 */

/** Top-level arrays at least this long are written a batch of elements at a time. */
const STREAM_FROM = 64;
/** Pieces are gathered into chunks of about this many characters before a write. */
const CHUNK = 1 << 16;
/** Elements written per JSON.stringify call: 64 or more make strings large enough to raise the peak RSS by a tenth. */
const BATCH = 16;

export interface JsonSink {
  write(chunk: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Values as JSON.stringify(_, null, 2) prints them `depth` levels down, found by stringifying them inside `depth`
 * arrays and cutting those off ("[\n  [\n    " before, "\n  ]\n]" after): no second pass to indent.
 */
function atDepth(values: unknown[], depth: 1 | 2): string {
  let wrapped: unknown = values;
  if (depth === 2) wrapped = [values];
  const s = JSON.stringify(wrapped, null, 2);
  const cut = depth === 2 ? 10 : 4; // "[\n  [\n    " or "[\n  "
  return s.slice(cut, s.length - (depth === 2 ? 6 : 2));
}

/** JSON.stringify leaves such a property out of an object. */
function leftOut(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Write `JSON.stringify(value, null, 2)` and a newline to `out`, waiting for 'drain' when it asks. */
export async function writeJson(out: JsonSink, value: unknown): Promise<void> {
  let pending = '';
  const flush = async (): Promise<void> => {
    const chunk = pending;
    pending = '';
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
  };
  const put = async (s: string): Promise<void> => {
    pending += s;
    if (pending.length >= CHUNK) await flush();
  };
  if (!isPlainObject(value)) {
    await put(`${JSON.stringify(value, null, 2)}\n`);
  } else {
    const keys = Object.keys(value);
    let first = true;
    for (const key of keys) {
      const v = value[key];
      if (Array.isArray(v) && v.length >= STREAM_FROM) {
        await put(`${first ? '{\n' : ',\n'}  ${JSON.stringify(key)}: [\n`);
        for (let i = 0; i < v.length; i += BATCH) {
          const end = Math.min(v.length, i + BATCH);
          await put(`    ${atDepth(v.slice(i, end), 2)}${end < v.length ? ',\n' : '\n'}`);
        }
        await put('  ]');
      } else {
        if (leftOut(v)) continue;
        await put(`${first ? '{\n' : ',\n'}  ${JSON.stringify(key)}: ${atDepth([v], 1)}`);
      }
      first = false;
    }
    await put(first ? '{}\n' : '\n}\n');
  }
  if (pending !== '') await flush();
}
