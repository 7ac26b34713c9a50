// Parse and serialize a SIP message (RFC 3261 §7) just enough for a stateless proxy: the start
// line, the headers in order (names as written, plus the canonical name for lookups), and the
// body as bytes. The head is decoded as latin1 so every byte survives a parse/serialize round trip.

export class SipParseError extends Error {}

/** Larger datagrams are refused: no legitimate request through an SBC edge needs more. */
export const MAX_MESSAGE_BYTES = 8192;
/** Header lines (continuations included) after the start line. */
export const MAX_HEADER_LINES = 100;

export interface SipHeader {
  /** As written on the wire (`v`, `VIA`, `Via` ...), kept so a relayed message changes little. */
  name: string;
  /** Lower-case long form (`via`), for lookups. */
  key: string;
  value: string;
  /**
   * A parsed header's line: the head it was read from, where the line lies in it (its CRLF not
   * included) and its value as read. While `value` is still that, the line is relayed as a slice
   * of that head, not written anew.
   */
  source?: string;
  lineStart?: number;
  lineEnd?: number;
  parsedValue?: string;
}

interface SipCommon {
  /** Vias appear one value per entry: a folded `Via: a, b` is split on parse (§7.3.1). */
  headers: SipHeader[];
  body: Buffer;
}

export interface SipRequest extends SipCommon {
  type: 'request';
  method: string;
  uri: string;
}

export interface SipResponse extends SipCommon {
  type: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

// RFC 3261 §7.3.3 and the later RFCs' compact forms.
const COMPACT: Record<string, string> = {
  a: 'accept-contact', b: 'referred-by', c: 'content-type', d: 'request-disposition',
  e: 'content-encoding', f: 'from', i: 'call-id', j: 'reject-contact', k: 'supported',
  l: 'content-length', m: 'contact', n: 'identity-info', o: 'event', r: 'refer-to',
  s: 'subject', t: 'to', u: 'allow-events', v: 'via', x: 'session-expires', y: 'identity',
};

/**
 * Header names as written → their key, for the names seen so far (a handful in practice). Only
 * valid names go in, and only up to a bound, so odd traffic cannot grow it.
 */
const KEYS = new Map<string, string>();
const MAX_KEYS = 1024;

/** The key of a header name, or undefined when the name is not a token. */
function keyOf(name: string): string | undefined {
  let key = KEYS.get(name);
  if (key !== undefined) return key;
  if (!isToken(name)) return undefined;
  const lower = name.toLowerCase();
  key = COMPACT[lower] ?? lower;
  if (KEYS.size < MAX_KEYS) KEYS.set(name, key);
  return key;
}

/**
 * The names most stacks write, as they write them, with their keys, by length: a line that starts
 * with one and its colon is read without slicing the name or hashing it (KEYS), which was the
 * parse's largest single cost.
 */
const USUAL = byLength(['Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Content-Length', 'Content-Type', 'Route', 'Record-Route', 'User-Agent', 'Subject', 'Allow', 'Supported']);

function byLength(names: readonly string[]): Array<Array<readonly [name: string, key: string]>> {
  const table: Array<Array<readonly [string, string]>> = [];
  for (const name of names) (table[name.length] ??= []).push([name, keyOf(name)!]);
  return table;
}

/** The usual name the line at `from` in `head` starts with, when its colon follows it. */
function usualName(head: string, from: number, colon: number): readonly [name: string, key: string] | undefined {
  const candidates = USUAL[colon - from];
  if (candidates === undefined) return undefined;
  for (const candidate of candidates) if (head.startsWith(candidate[0], from)) return candidate;
  return undefined;
}

/** The name of a header line in any other spelling (`VIA`, `v`, `Via :`), and its key; throws when it is not a token. */
function writtenName(head: string, from: number, colon: number): [name: string, key: string] {
  const name = colon < 0 ? '' : head.slice(from, colon).trimEnd();
  const key = keyOf(name);
  if (key === undefined) throw new SipParseError('bad header line');
  return [name, key];
}

/** JavaScript's trim() over the characters a latin1-decoded head can hold. */
export const isWhitespace = (c: number) => c === 32 || (c >= 9 && c <= 13) || c === 160;

/** `text` from `from` to `end`, trimmed as trim() would, with one slice. */
export function trimmed(text: string, from: number, end: number): string {
  while (from < end && isWhitespace(text.charCodeAt(from))) from++;
  while (end > from && isWhitespace(text.charCodeAt(end - 1))) end--;
  return text.slice(from, end);
}

/**
 * The message in `bytes`, or null for a keep-alive (nothing but CRLFs). `framed`: `bytes` is one
 * message cut from a stream (framer.ts), whose body must then be its Content-Length exactly.
 * Throws SipParseError for anything a proxy cannot relay safely.
 */
export function parseMessage(bytes: Buffer, framed = false): SipMessage | null {
  let start = 0;
  while (start < bytes.length && (bytes[start] === 13 || bytes[start] === 10)) start++;
  if (start === bytes.length) return null;
  if (bytes.length > MAX_MESSAGE_BYTES) throw new SipParseError(`message over ${MAX_MESSAGE_BYTES} bytes`);
  const headEnd = bytes.indexOf('\r\n\r\n', start, 'latin1');
  if (headEnd < 0) throw new SipParseError('no blank line after the headers');
  requireCleanHead(bytes, start, headEnd);
  // Latin1, so every byte survives; each line with its CRLF, the last one's included.
  const head = bytes.toString('latin1', start, headEnd + 2);
  const firstEnd = lineEnd(head, 0);
  const headers = parseHeaders(head, firstEnd + 2);
  const body = bodyOf(bytes.subarray(headEnd + 4), headers);
  // The framer and this parser must agree on where a message ends, or a stream could carry
  // bytes one of them skips.
  if (framed && body.length !== bytes.length - headEnd - 4) throw new SipParseError('body longer than Content-Length on a stream');
  return startLine(head.slice(0, firstEnd), headers, body);
}

/** Where the line at `from` ends: its CRLF (every line of a head has one). */
function lineEnd(head: string, from: number): number {
  return head.indexOf('\r\n', from);
}

/**
 * Lines of the head end in CRLF only, and nothing else in it is a control character but HTAB.
 * Many SIP stacks take a bare LF (or CR) as a line end, so a value holding one would carry a
 * header past the edge's strip of internal headers (`Subject: x<LF>X-Account-ID: victim`);
 * NUL and the rest are refused for the same reason: whatever reads the head next may split on them.
 */
function requireCleanHead(bytes: Buffer, start: number, end: number): void {
  const at = firstControl(bytes, start, end);
  if (at >= 0) throw new SipParseError(`control character 0x${bytes[at]!.toString(16).padStart(2, '0')} in the head`);
}

/** Where the first byte of `bytes[start, end)` that requireCleanHead refuses is, or -1. */
export function firstControl(bytes: Buffer, start: number, end: number): number {
  const words = wordsOf(bytes.buffer);
  const offset = bytes.byteOffset;
  let i = start;
  while (i < end) {
    // Four bytes a step where they are aligned and none of them needs a look: most of a head.
    const at = offset + i;
    if ((at & 3) === 0 && i + 4 <= end && plainWord(words[at >>> 2]!)) {
      i += 4;
      continue;
    }
    const c = bytes[i]!;
    if ((c >= 32 && c !== 127) || c === 9) i++;
    else if (c === 13 && bytes[i + 1] === 10) i += 2;
    else return i;
  }
  return -1;
}

/** None of the word's four bytes is below 0x20 or 0x7f (the "has a byte less than n" and "has a zero byte" bit tricks). */
function plainWord(w: number): boolean {
  const x = w ^ 0x7f7f7f7f;
  return ((((w - 0x20202020) & ~w) | ((x - 0x01010101) & ~x)) & 0x80808080) === 0;
}

let wordsBuffer: ArrayBufferLike | undefined;
let words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/** A word view of `buffer`, kept for the next call: datagrams share the batched socket's memory. */
function wordsOf(buffer: ArrayBufferLike): Uint32Array {
  if (buffer !== wordsBuffer) {
    words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    wordsBuffer = buffer;
  }
  return words;
}

function startLine(line: string, headers: SipHeader[], body: Buffer): SipMessage {
  const firstSpace = line.indexOf(' ');
  const lastSpace = line.lastIndexOf(' ');
  if (firstSpace <= 0) throw new SipParseError('bad start line');
  if (line.startsWith('SIP/')) {
    const secondSpace = line.indexOf(' ', firstSpace + 1);
    const statusText = line.slice(firstSpace + 1, secondSpace < 0 ? undefined : secondSpace);
    const status = Number(statusText);
    if (!isSipVersion(line.slice(0, firstSpace)) || !/^[1-6]\d\d$/.test(statusText)) {
      throw new SipParseError('bad status line');
    }
    const reason = secondSpace < 0 ? '' : line.slice(secondSpace + 1);
    return { type: 'response', status, reason, headers, body };
  }
  const method = line.slice(0, firstSpace);
  const uri = line.slice(firstSpace + 1, lastSpace);
  if (!isToken(method) || uri === '' || uri.includes(' ') || !isSipVersion(line.slice(lastSpace + 1))) {
    throw new SipParseError('bad request line');
  }
  return { type: 'request', method, uri, headers, body };
}

/** The header lines of `head` from `from` on. */
function parseHeaders(head: string, from: number): SipHeader[] {
  const headers: SipHeader[] = [];
  let last: SipHeader | undefined;
  for (let start = from, end = 0, lines = 1; start < head.length; start = end + 2, lines++) {
    if (lines > MAX_HEADER_LINES) throw new SipParseError(`more than ${MAX_HEADER_LINES} header lines`);
    end = lineEnd(head, start);
    const first = head.charCodeAt(start);
    if (first === 32 || first === 9) {
      // §7.3.1: a line starting with whitespace continues the previous header's value.
      if (last === undefined) throw new SipParseError('continuation line before any header');
      last.value = `${last.value} ${trimmed(head, start, end)}`;
      continue;
    }
    const found = head.indexOf(':', start);
    const colon = found < end ? found : -1;
    const [name, key] = usualName(head, start, colon) ?? writtenName(head, start, colon);
    const value = trimmed(head, colon + 1, end);
    last = { name, key, value, source: head, lineStart: start, lineEnd: end, parsedValue: value };
    headers.push(last);
  }
  return splitVias(headers);
}

/** Several values folded into one Via header become one entry each, so the first is popped. */
function splitVias(headers: SipHeader[]): SipHeader[] {
  // Most messages hold no folded Via and keep their list; a sipp UAS folds every response's.
  let split: SipHeader[] | undefined;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    if (h.key !== 'via' || !h.value.includes(',')) {
      split?.push(h);
      continue;
    }
    split ??= headers.slice(0, i);
    for (const value of splitOutsideQuotes(h.value)) split.push({ name: h.name, key: h.key, value });
  }
  return split ?? headers;
}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;

/** Comma-separated values; commas inside quoted strings (a Via parameter may be quoted) stay. */
export function splitOutsideQuotes(value: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === QUOTE) quoted = !quoted;
    else if (c === BACKSLASH && quoted) i++;
    else if (c === COMMA && !quoted) {
      parts.push(nonEmpty(trimmed(value, from, i)));
      from = i + 1;
    }
  }
  parts.push(nonEmpty(trimmed(value, from, value.length)));
  return parts;
}

function nonEmpty(part: string): string {
  if (part === '') throw new SipParseError('empty value in a comma-separated list');
  return part;
}

/** Over UDP the body is the rest of the datagram, cut to Content-Length when that is shorter. */
function bodyOf(rest: Buffer, headers: SipHeader[]): Buffer {
  const declared = header(headers, 'content-length');
  if (declared === undefined) return rest;
  if (!/^\d{1,9}$/.test(declared)) throw new SipParseError('bad Content-Length');
  const length = Number(declared);
  // RFC 3261 §18.3: a datagram shorter than its Content-Length is discarded.
  if (length > rest.length) throw new SipParseError('body shorter than Content-Length');
  return rest.subarray(0, length);
}

export function header(headers: SipHeader[], key: string): string | undefined {
  for (const h of headers) if (h.key === key) return h.value;
  return undefined;
}

/** A header whose line can be relayed as the slice of the head it was parsed from. */
function isVerbatim(h: SipHeader): boolean {
  return h.source !== undefined && h.value === h.parsedValue;
}

/**
 * The message's bytes. Headers as parsed are slices of the head they came in, a run of adjacent
 * lines in one slice; only the start line and what was changed or added are written anew.
 */
export function serializeMessage(message: SipMessage): Buffer {
  let head =
    message.type === 'request'
      ? `${message.method} ${message.uri} SIP/2.0\r\n`
      : `SIP/2.0 ${message.status} ${message.reason}\r\n`;
  // Lines with their CRLFs, from runStart to runEnd of `run`, not yet added to the head.
  let run: string | undefined;
  let runStart = 0;
  let runEnd = 0;
  for (const h of message.headers) {
    const verbatim = isVerbatim(h);
    if (verbatim && run === h.source && runEnd === h.lineStart) {
      runEnd = h.lineEnd! + 2;
      continue;
    }
    if (run !== undefined) head += run.slice(runStart, runEnd);
    run = verbatim ? h.source : undefined;
    if (verbatim) {
      runStart = h.lineStart!;
      runEnd = h.lineEnd! + 2;
    } else {
      head += `${h.name}: ${h.value}\r\n`;
    }
  }
  if (run !== undefined) head += run.slice(runStart, runEnd);
  head += '\r\n';
  if (message.body.length === 0) return Buffer.from(head, 'latin1');
  const out = Buffer.allocUnsafe(head.length + message.body.length);
  out.write(head, 0, 'latin1');
  message.body.copy(out, head.length);
  return out;
}

function isSipVersion(text: string): boolean {
  return text === 'SIP/2.0' || text.toUpperCase() === 'SIP/2.0';
}

/** `text` lower-cased is `lower`; allocates nothing when it is already (as it nearly always is). */
export function isLowercaseOf(text: string, lower: string): boolean {
  return text === lower || (text.length === lower.length && text.toLowerCase() === lower);
}

// RFC 3261 §25.1 token: alphanumerics and -.!%*_+`'~
function isToken(text: string): boolean {
  if (text === '') return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!alnum && !"-.!%*_+`'~".includes(text[i]!)) return false;
  }
  return true;
}
