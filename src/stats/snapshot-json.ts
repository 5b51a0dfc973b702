/**
 * JSON.parse for documents that carry histogram snapshots, as merge reads a fleet's: most of a dnsbench document's
 * text is its buckets, `"buckets": [[low, count], ...]`, and JSON.parse makes an array of every pair. Here each such
 * list of whole-number pairs is read by a scanner into one packed array (PackedBuckets) and the rest of the text by
 * JSON.parse. A list in any other shape (fractions, exponents, a third element) is left to JSON.parse, and text
 * JSON.parse would refuse is refused: the same documents, the same values, at a fraction of the allocations.
 */
import { randomBytes } from 'node:crypto';
import { PackedBuckets } from './histogram.js';

const KEY = '"buckets"';
/** What stands in for a packed list while JSON.parse reads the rest; the nonce keeps a document from forging one. */
const MARK = `\u0000buckets:${randomBytes(6).toString('hex')}:`;
const MARK_JSON = JSON.stringify(MARK).slice(0, -1); // without its closing quote
/** Digits of a number the scanner reads: 15 are exact in a double; longer ones go to JSON.parse. */
const MAX_DIGITS = 15;

let pairs: Float64Array = new Float64Array(4096);
/** Where the next number goes in `pairs`: a scan writes from the `base` it is given up to here. */
let np = 0;

function grow(): Float64Array {
  const grown = new Float64Array(pairs.length * 2);
  grown.set(pairs);
  pairs = grown;
  return grown;
}

const isSpace = (c: number): boolean => c === 32 || c === 10 || c === 13 || c === 9;

/**
 * The whole number JSON writes at `p` (`0`, or up to 15 digits not starting with 0) into pairs[np], and the index
 * after it; -1 for anything else (a fraction, an exponent, a sign, more digits: left to JSON.parse).
 */
function wholeAt(t: string, p: number): number {
  let c = t.charCodeAt(p);
  if (c === 48) {
    c = t.charCodeAt(p + 1);
    if (c >= 48 && c <= 57) return -1;
    pairs[np++] = 0;
    return p + 1;
  }
  let v = c - 48;
  if (v < 1 || v > 9) return -1;
  const start = p;
  c = t.charCodeAt(++p);
  while (c >= 48 && c <= 57) {
    v = v * 10 + (c - 48);
    c = t.charCodeAt(++p);
  }
  if (p - start > MAX_DIGITS || c === 46 /* . */ || c === 101 || c === 69 /* e E */) return -1;
  pairs[np++] = v;
  return p;
}

/**
 * scanPairs for compact JSON (JSON.stringify without indent: no whitespace), the shape of a fleet's NDJSON. The
 * number reading is written out twice, with locals only: the scan runs over most of merge's input, and a call or a
 * module variable per number costs a third of its time.
 */
function scanCompactPairs(t: string, p: number, base: number): number {
  let P = pairs;
  let n = base;
  let c = t.charCodeAt(++p);
  if (c === 93) {
    np = base;
    return p + 1;
  }
  for (;;) {
    if (c !== 91) return -1;
    if (n + 2 > P.length) {
      np = n;
      P = grow();
    }
    c = t.charCodeAt(++p);
    if (c === 48) {
      P[n++] = 0;
      c = t.charCodeAt(++p);
    } else {
      let v = c - 48;
      if (v < 1 || v > 9) return -1;
      const start = p;
      c = t.charCodeAt(++p);
      while (c >= 48 && c <= 57) {
        v = v * 10 + (c - 48);
        c = t.charCodeAt(++p);
      }
      if (p - start > MAX_DIGITS) return -1;
      P[n++] = v;
    }
    if (c !== 44) return -1;
    c = t.charCodeAt(++p);
    if (c === 48) {
      P[n++] = 0;
      c = t.charCodeAt(++p);
    } else {
      let v = c - 48;
      if (v < 1 || v > 9) return -1;
      const start = p;
      c = t.charCodeAt(++p);
      while (c >= 48 && c <= 57) {
        v = v * 10 + (c - 48);
        c = t.charCodeAt(++p);
      }
      if (p - start > MAX_DIGITS) return -1;
      P[n++] = v;
    }
    if (c !== 93) return -1;
    c = t.charCodeAt(++p);
    if (c === 93) {
      np = n;
      return p + 1;
    }
    if (c !== 44) return -1;
    c = t.charCodeAt(++p);
  }
}

/**
 * Scan `[[a, b], ...]` from the `[` at `p` into `pairs`; the index after its closing `]`, or -1 for any other shape.
 * Whitespace is allowed where JSON allows it (a pretty-printed document).
 */
function scanPairs(t: string, p: number, base: number): number {
  const compact = scanCompactPairs(t, p, base);
  if (compact >= 0) return compact;
  np = base;
  p++;
  while (isSpace(t.charCodeAt(p))) p++;
  if (t.charCodeAt(p) === 93) return p + 1; // []
  for (;;) {
    if (t.charCodeAt(p) !== 91) return -1;
    if (np + 2 > pairs.length) grow();
    p++;
    while (isSpace(t.charCodeAt(p))) p++;
    if ((p = wholeAt(t, p)) < 0) return -1;
    while (isSpace(t.charCodeAt(p))) p++;
    if (t.charCodeAt(p) !== 44) return -1;
    p++;
    while (isSpace(t.charCodeAt(p))) p++;
    if ((p = wholeAt(t, p)) < 0) return -1;
    while (isSpace(t.charCodeAt(p))) p++;
    if (t.charCodeAt(p) !== 93) return -1;
    p++;
    while (isSpace(t.charCodeAt(p))) p++;
    const c = t.charCodeAt(p);
    if (c === 93) return p + 1;
    if (c !== 44) return -1;
    p++;
    while (isSpace(t.charCodeAt(p))) p++;
  }
}

/** Put each packed list back where its mark is, under a `buckets` key; returns how many were put back. */
function restore(v: unknown, packed: PackedBuckets[], left: number): number {
  if (v === null || typeof v !== 'object') return left;
  if (Array.isArray(v)) {
    for (const x of v) if (left > 0 && x !== null && typeof x === 'object') left = restore(x, packed, left);
    return left;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) {
    if (left === 0) return 0;
    const x = o[k];
    if (typeof x === 'string') {
      if (k === 'buckets' && x.startsWith(MARK)) {
        const i = Number(x.slice(MARK.length));
        const b = packed[i];
        if (b !== undefined) {
          o[k] = b;
          left--;
        }
      }
    } else if (x !== null && typeof x === 'object') left = restore(x, packed, left);
  }
  return left;
}

/**
 * JSON.parse(text), with every `buckets` list of whole-number pairs read as PackedBuckets. Throws as JSON.parse does.
 * `transient`: the lists are views of one buffer that the next call writes over, for a caller that has used the
 * document before it parses another (merge folds each in as it is read): no memory per list.
 */
export function parseWithPackedBuckets(text: string, transient = false): unknown {
  let k = text.indexOf(KEY);
  if (k < 0) return JSON.parse(text) as unknown;
  const packed: PackedBuckets[] = [];
  let base = 0;
  let out = '';
  let from = 0;
  while (k >= 0) {
    let p = k + KEY.length;
    while (isSpace(text.charCodeAt(p))) p++;
    if (text.charCodeAt(p) === 58 /* : */) {
      p++;
      while (isSpace(text.charCodeAt(p))) p++;
      if (text.charCodeAt(p) === 91 /* [ */) {
        const end = scanPairs(text, p, base);
        if (end >= 0) {
          out += `${text.slice(from, p)}${MARK_JSON}${packed.length}"`;
          packed.push(new PackedBuckets(transient ? pairs.subarray(base, np) : pairs.slice(base, np)));
          base = np;
          from = end;
          k = text.indexOf(KEY, end);
          continue;
        }
      }
    }
    k = text.indexOf(KEY, k + KEY.length);
  }
  if (packed.length === 0) return JSON.parse(text) as unknown;
  const doc = JSON.parse(out + text.slice(from)) as unknown;
  if (restore(doc, packed, packed.length) !== 0) return JSON.parse(text) as unknown; // a mark not found where expected
  return doc;
}
