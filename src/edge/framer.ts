// SIP over a byte stream (RFC 3261 §18.3): messages follow one another, each one's end given by
// its Content-Length, which a stream must carry. CRLFs before a message are skipped (§7.5), and a
// CRLFCRLF there is a keep-alive ping the sender wants a CRLF back for (RFC 5626 §3.5.1). The
// framer holds at most one incomplete message, never more than message.ts's limit.
import { MAX_HEADER_LINES, MAX_MESSAGE_BYTES, SipParseError } from './message.ts';

export type Framed = { kind: 'message'; bytes: Buffer } | { kind: 'ping' };

const CR = 13;
const LF = 10;
const PING = [CR, LF, CR, LF];

export class SipFramer {
  /** The incomplete message's bytes so far (a copy, at most MAX_MESSAGE_BYTES), or null. */
  private partial: Buffer | null = null;
  private partialLength = 0;
  /** The whole message's length once its head has been read; -1 before. */
  private total = -1;
  /** How much of the ping's CRLFCRLF the bytes since the last message have matched. */
  private pingMatched = 0;

  /** Bytes held for a message not yet complete. */
  get buffered(): number {
    return this.partialLength;
  }

  /**
   * The messages and pings `chunk` completes, in order. Throws SipParseError when the stream can
   * no longer be framed (a message over the limit, no usable Content-Length): the connection is
   * then beyond repair.
   */
  push(chunk: Buffer): Framed[] {
    const out: Framed[] = [];
    let at = this.partial === null ? 0 : this.continuePartial(chunk, out);
    while (at < chunk.length) {
      const byte = chunk[at]!;
      if (byte === CR || byte === LF) {
        this.skipKeepAlive(byte, out);
        at++;
        continue;
      }
      this.pingMatched = 0;
      const length = this.messageLength(chunk, at, chunk.length);
      if (length === undefined || at + length > chunk.length) {
        this.hold(chunk.subarray(at), length);
        return out;
      }
      out.push({ kind: 'message', bytes: chunk.subarray(at, at + length) });
      at += length;
    }
    return out;
  }

  private skipKeepAlive(byte: number, out: Framed[]): void {
    if (byte === PING[this.pingMatched]) this.pingMatched++;
    else this.pingMatched = byte === CR ? 1 : 0;
    if (this.pingMatched === PING.length) {
      out.push({ kind: 'ping' });
      this.pingMatched = 0;
    }
  }

  /** Starts holding an incomplete message (copied, so the chunk it came in can be freed). */
  private hold(bytes: Buffer, total: number | undefined): void {
    this.partial = Buffer.allocUnsafe(MAX_MESSAGE_BYTES);
    bytes.copy(this.partial);
    this.partialLength = bytes.length;
    this.total = total ?? -1;
  }

  /** Adds `chunk` to the message held; returns where in `chunk` the bytes after it start. */
  private continuePartial(chunk: Buffer, out: Framed[]): number {
    const partial = this.partial!;
    const before = this.partialLength;
    const copied = chunk.copy(partial, before, 0, Math.min(chunk.length, MAX_MESSAGE_BYTES - before));
    this.partialLength += copied;
    if (this.total < 0) {
      // The head's end may straddle the chunks: search from three bytes before the new ones.
      const length = this.messageLength(partial, Math.max(0, before - 3), this.partialLength, 0);
      if (length === undefined) return chunk.length;
      this.total = length;
    }
    if (this.partialLength < this.total) return chunk.length;
    out.push({ kind: 'message', bytes: partial.subarray(0, this.total) });
    const used = this.total - before;
    this.partial = null;
    this.partialLength = 0;
    this.total = -1;
    return used;
  }

  /**
   * The length of the message starting at `start` (its head searched for from `from`), or
   * undefined when its head has not ended before `end` yet. Throws when it cannot fit the limit.
   */
  private messageLength(bytes: Buffer, from: number, end: number, start = from): number | undefined {
    // `bytes` may run on past `end` (the held message's buffer): a match must end before it.
    const headEnd = bytes.indexOf('\r\n\r\n', from, 'latin1');
    if (headEnd < 0 || headEnd + 4 > end) {
      if (end - start >= MAX_MESSAGE_BYTES) throw new SipParseError(`message over ${MAX_MESSAGE_BYTES} bytes`);
      return undefined;
    }
    const length = headEnd + 4 - start + contentLength(bytes.toString('latin1', start, headEnd));
    if (length > MAX_MESSAGE_BYTES) throw new SipParseError(`message over ${MAX_MESSAGE_BYTES} bytes`);
    return length;
  }
}

/**
 * The Content-Length of a head (start line and header lines, CRLF-separated), read as
 * message.ts reads it (names trimmed, `l` its compact form, continuation lines joined) so that
 * both agree on where the message ends. A stream message without one, or with two, cannot be framed.
 */
function contentLength(head: string): number {
  const lines = head.split('\r\n');
  if (lines.length - 1 > MAX_HEADER_LINES) throw new SipParseError(`more than ${MAX_HEADER_LINES} header lines`);
  let value: string | undefined;
  let inContentLength = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (inContentLength) value = `${value} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trimEnd().toLowerCase();
    inContentLength = name === 'content-length' || name === 'l';
    if (!inContentLength) continue;
    if (value !== undefined) throw new SipParseError('two Content-Length headers on a stream');
    value = line.slice(colon + 1).trim();
  }
  if (value === undefined) throw new SipParseError('no Content-Length on a stream');
  if (!/^\d{1,9}$/.test(value)) throw new SipParseError('bad Content-Length');
  return Number(value);
}
