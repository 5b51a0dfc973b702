/**
 * The JSON documents in a stream of text, found as the text arrives: one per file, NDJSON, concatenated
 * (pretty-printed or not), or every line prefixed as `kubectl logs --prefix` prints them.
 *
 * An object starts with `{` at the start of a line (after any prefix) and ends at its matching brace, strings
 * honoured. Any other line is junk, reported by its first 80 characters; lines of junk one after another are one
 * report (a document cut short is one warning, not one per line). A line that starts like an object but does not
 * parse (a truncated document, a log line) is junk too, and the scan goes on from the line after it, so one stray
 * brace never swallows the documents after it.
 *
 * Memory: the lines of the object being read, at most `maxDocument` characters; everything before it is gone.
 */

/** Objects that never close each cost a scan to the end of the text: after this many, no more are tried. */
export const MAX_UNCLOSED = 8;

export interface SplitterOptions {
  /** Called with each document, in order. */
  onDocument: (doc: unknown) => void;
  /** Called with each report of junk, in order. */
  onJunk: (report: string) => void;
  /** An object longer than this many characters is read as junk (default 32 Mi). */
  maxDocument?: number | undefined;
  /** How an object's text is read (default JSON.parse); it throws on text that is not JSON. */
  parse?: (text: string) => unknown;
}

const PREFIX = /^\[[^\]\n]*\] ?/;
const SPACE = 32;
const TAB = 9;
const CR = 13;
const OPEN = 123; // {
const CLOSE = 125; // }
const QUOTE = 34;
const BACKSLASH = 92;

/** Where an object starts in `line` from `p` (spaces, and a `kubectl logs --prefix`, skipped), or -1. */
function objectAt(line: string, p: number): number {
  while (line.charCodeAt(p) === SPACE || line.charCodeAt(p) === TAB || line.charCodeAt(p) === CR) p++;
  if (line.charCodeAt(p) === 91 /* [ */) {
    const m = PREFIX.exec(line.slice(p));
    if (m !== null) p += m[0].length;
  }
  while (line.charCodeAt(p) === SPACE || line.charCodeAt(p) === TAB) p++;
  return line.charCodeAt(p) === OPEN ? p : -1;
}

/** The object being read: its lines so far, where it starts in the first, and the brace scan's state. */
interface Candidate {
  lines: string[];
  start: number;
  chars: number;
  /** 'pretty': waiting for a line that is exactly `}` before scanning at all (JSON.stringify's indented output). */
  mode: 'pretty' | 'scan';
  /** Lines the brace scan has passed. */
  scanned: number;
  depth: number;
  inString: boolean;
}

export class DocumentSplitter {
  private readonly onDocument: (doc: unknown) => void;
  private readonly onJunk: (report: string) => void;
  private readonly maxDocument: number;
  /** The unfinished last line of what was fed. */
  private tail = '';
  /** Lines waiting to be read: what was fed, and the lines after a failed object's first, read again. */
  private queue: string[] = [];
  private head = 0;
  private candidate: Candidate | undefined;
  private unclosed = 0;
  private run: { first: string; more: number } | undefined;
  /** Whether the last line read was junk (a run goes on only over consecutive junk lines). */
  private lastJunk = false;
  private ended = false;
  /** Inside a line too long to keep: skipped to its newline. */
  private skipping = false;

  private readonly parse: (text: string) => unknown;

  constructor(options: SplitterOptions) {
    this.parse = options.parse ?? JSON.parse;
    this.onDocument = options.onDocument;
    this.onJunk = options.onJunk;
    this.maxDocument = options.maxDocument ?? 32 << 20;
  }

  feed(chunk: string): void {
    let from = 0;
    for (;;) {
      const eol = chunk.indexOf('\n', from);
      if (eol < 0) break;
      if (this.skipping) this.skipping = false;
      else this.line(from === 0 && this.tail !== '' ? this.tail + chunk.slice(0, eol) : chunk.slice(from, eol));
      this.tail = '';
      from = eol + 1;
    }
    if (from < chunk.length && !this.skipping) {
      if (this.tail.length + chunk.length - from > this.maxDocument) {
        // A line longer than any document can be: junk, and skipped to its end unread.
        this.tail = '';
        this.skipping = true;
        this.flush();
        this.lastJunk = false;
        this.onJunk(`a line of more than ${mib(this.maxDocument)} MiB: skipped to its end`);
      } else this.tail += chunk.slice(from);
    }
    this.drain();
  }

  end(): void {
    if (this.tail !== '') this.line(this.tail);
    this.tail = '';
    this.ended = true;
    this.drain();
    this.flush();
  }

  /** A whole line read: its `kubectl logs --prefix` dropped, then read at once unless lines read again are waiting. */
  private line(text: string): void {
    if (text.charCodeAt(0) === 91 /* [ */) {
      const close = text.indexOf(']');
      if (close > 0) text = text.slice(text.charCodeAt(close + 1) === SPACE ? close + 2 : close + 1);
    }
    if (this.head < this.queue.length) this.queue.push(text);
    else if (this.candidate === undefined) this.outside(text);
    else this.inside(this.candidate, text);
  }

  private tryParse(text: string): unknown {
    try {
      return this.parse(text);
    } catch {
      return undefined;
    }
  }

  private drain(): void {
    for (;;) {
      while (this.head < this.queue.length) {
        const line = this.queue[this.head]!;
        this.head++;
        if (this.candidate === undefined) this.outside(line);
        else this.inside(this.candidate, line);
      }
      this.queue = [];
      this.head = 0;
      // At the end, an object still open never closes: its first line is junk, the lines after it are read again.
      const c = this.candidate;
      if (!this.ended || c === undefined) return;
      c.mode = 'scan';
      if (!this.scan(c)) this.giveUp(c, false);
    }
  }

  /** A line outside any object: an object starts in it, or it is junk. */
  private outside(line: string): void {
    const start = this.unclosed < MAX_UNCLOSED ? objectAt(line, 0) : -1;
    if (start < 0) {
      this.junk(line);
      return;
    }
    this.lastJunk = false;
    // One object on one line (NDJSON): parsed whole. When the line is one object, its matching brace is its last.
    let end = line.length;
    while (end > start && (line.charCodeAt(end - 1) === SPACE || line.charCodeAt(end - 1) === TAB || line.charCodeAt(end - 1) === CR)) end--;
    if (end - start > 1 && line.charCodeAt(end - 1) === CLOSE) {
      const doc = this.tryParse(start === 0 && end === line.length ? line : line.slice(start, end));
      if (doc !== undefined) {
        this.document(doc);
        return;
      }
    }
    const pretty = end - start === 1; // a line that is only `{`
    const c: Candidate = { lines: [line], start, chars: line.length - start, mode: pretty ? 'pretty' : 'scan', scanned: 0, depth: 0, inString: false };
    this.candidate = c;
    if (!pretty && !this.scan(c) && c.chars > this.maxDocument) this.giveUp(c, true);
  }

  /** A line of an open object. */
  private inside(c: Candidate, line: string): void {
    c.lines.push(line);
    c.chars += line.length + 1;
    if (c.mode === 'pretty') {
      // JSON.stringify(x, null, n) indents every line inside its top object and closes it with a line that is `}`.
      // Until such a line, or one that breaks the pattern, the brace scan waits; then it runs over every line kept.
      const closing = line === '}' || line === '}\r';
      if (closing) {
        const doc = this.tryParse(joinLines(c.lines, c.start, c.lines.length - 1, line.length));
        if (doc !== undefined) {
          this.candidate = undefined;
          this.document(doc);
          return;
        }
      }
      const indented = line === '' || line.charCodeAt(0) === SPACE || line.charCodeAt(0) === TAB;
      if (!closing && indented && c.chars <= this.maxDocument) return;
      c.mode = 'scan';
    }
    if (!this.scan(c) && c.chars > this.maxDocument) this.giveUp(c, true);
  }

  /** The brace scan over the lines not yet scanned; at the matching brace the object is closed (true). */
  private scan(c: Candidate): boolean {
    for (; c.scanned < c.lines.length; c.scanned++) {
      const line = c.lines[c.scanned]!;
      // A backslash skips the character after it; at the end of a line that is the newline (never valid JSON).
      for (let j = c.scanned === 0 ? c.start : 0; j < line.length; j++) {
        const ch = line.charCodeAt(j);
        if (c.inString) {
          if (ch === BACKSLASH) j++;
          else if (ch === QUOTE) c.inString = false;
        } else if (ch === QUOTE) c.inString = true;
        else if (ch === OPEN) c.depth++;
        else if (ch === CLOSE && --c.depth === 0) {
          this.close(c, c.scanned, j);
          return true;
        }
      }
    }
    return false;
  }

  /** The object's matching brace is at line `at`, column `col`. */
  private close(c: Candidate, at: number, col: number): void {
    this.candidate = undefined;
    const doc = this.tryParse(joinLines(c.lines, c.start, at, col + 1));
    if (doc === undefined) {
      // Not JSON after all: its first line is junk, and everything after that line is read again.
      this.junk(c.lines[0]!);
      this.requeue(c.lines, 1);
      return;
    }
    this.document(doc);
    // What follows the object on its last line (another object, concatenated) is read from there.
    c.lines[at] = c.lines[at]!.slice(col + 1);
    this.requeue(c.lines, at);
  }

  /** An object given up (it never closes, or is too long): its first line is junk, the lines after it read again. */
  private giveUp(c: Candidate, tooLong: boolean): void {
    this.candidate = undefined;
    const limit = ++this.unclosed === MAX_UNCLOSED;
    if (tooLong || limit) this.flush();
    if (tooLong) this.onJunk(`an object of more than ${mib(this.maxDocument)} MiB: read as junk`);
    if (limit) this.onJunk(`${MAX_UNCLOSED} objects that never close: the rest is read as junk`);
    this.junk(c.lines[0]!);
    this.requeue(c.lines, 1);
  }

  /** Puts lines[from..] back in front of the lines waiting. */
  private requeue(lines: string[], from: number): void {
    const n = lines.length - from;
    if (n <= 0) return;
    if (this.head >= n) {
      this.head -= n;
      for (let k = 0; k < n; k++) this.queue[this.head + k] = lines[from + k]!;
    } else {
      this.queue = [...lines.slice(from), ...this.queue.slice(this.head)];
      this.head = 0;
    }
  }

  private document(doc: unknown): void {
    this.flush();
    this.lastJunk = false;
    this.onDocument(doc);
  }

  private junk(line: string): void {
    const text = line.trim();
    if (text === '') {
      this.lastJunk = false;
      return;
    }
    if (this.run !== undefined && this.lastJunk) {
      this.run.more++;
      return;
    }
    this.flush();
    this.run = { first: text.slice(0, 80), more: 0 };
    this.lastJunk = true;
  }

  private flush(): void {
    const run = this.run;
    if (run === undefined) return;
    this.run = undefined;
    this.onJunk(`"${run.first}"${run.more > 0 ? ` and the ${run.more} line${run.more === 1 ? '' : 's'} after it (a document cut short?)` : ''}`);
  }
}

/** A character count in MiB, as the caps are stated (a character of a document is a byte but for non-ASCII). */
const mib = (chars: number): string => String(Math.round((chars / (1 << 20)) * 10) / 10);


/** The text of lines[0] from `start` to lines[last] up to `endCol`, joined by newlines. */
function joinLines(lines: string[], start: number, last: number, endCol: number): string {
  if (last === 0) return lines[0]!.slice(start, endCol);
  const parts = new Array<string>(last + 1);
  parts[0] = lines[0]!.slice(start);
  for (let k = 1; k < last; k++) parts[k] = lines[k]!;
  parts[last] = lines[last]!.slice(0, endCol);
  return parts.join('\n');
}

/** Every document and junk report in a whole text (the splitter fed once). */
export function splitDocuments(text: string): { docs: unknown[]; garbage: string[] } {
  const docs: unknown[] = [];
  const garbage: string[] = [];
  const s = new DocumentSplitter({ onDocument: (d) => docs.push(d), onJunk: (g) => garbage.push(g) });
  s.feed(text);
  s.end();
  return { docs, garbage };
}
