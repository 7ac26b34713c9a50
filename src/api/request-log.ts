// The one info line per answered request, written by both the decision fast path and Fastify's
// routes (api.md §8 keeps it in the HTTP comparison).
//
// pino formats any object with a generic loop (a serializer and a stringifier looked up, and the
// escaping, for each key), which costs more than a decision answer's envelope. A request line
// always has the same fields, so it is assembled here from the logger's own pieces (level label,
// time, bindings, message key, line end) and written to the logger's own destination: the line
// pino writes for the same object (test/api/request-log.test.ts), for less (figures:
// docs/performance.md, "Figures behind the code"). It assumes what
// createLogger (src/main.ts) makes: no mixin, log formatter or write hook, and no redaction that
// reaches these fields.

import type { FastifyBaseLogger } from 'fastify';
import { unescape } from 'node:querystring';
import pino from 'pino';

export interface RequestLine {
  reqId: string;
  method: string;
  /** As requested; a query-string token is hidden here. */
  url: string;
  /** Omitted from the line when unknown, as pino omits an undefined field. */
  remote: string | undefined;
  status: number;
  /** Written to the hundredth. */
  ms: number;
}

const TOKEN_KEY = 'auth_token';
/** The longest key that can decode to `auth_token`: every character escaped as %XX. */
const LONGEST_TOKEN_KEY = 3 * TOKEN_KEY.length;

/** Does the query key `url[from, to)` decode to `auth_token`, as the query parser reads it? */
function isTokenKey(url: string, from: number, to: number): boolean {
  const length = to - from;
  if (length === TOKEN_KEY.length) return url.startsWith(TOKEN_KEY, from);
  if (length < TOKEN_KEY.length || length > LONGEST_TOKEN_KEY) return false;
  const percent = url.indexOf('%', from);
  return percent >= 0 && percent < to && unescape(url.slice(from, to)) === TOKEN_KEY;
}

/**
 * A query-string token is hidden from the log, under any spelling of its key that the query
 * parser decodes to `auth_token` (`auth%5Ftoken=` too). A query without one costs a scan, and
 * a decoding only for an escaped key of a length that could spell it.
 */
function redactUrl(url: string): string {
  const mark = url.indexOf('?');
  if (mark < 0) return url;
  let redacted = '';
  let copied = 0;
  for (let start = mark + 1; start < url.length; ) {
    let end = url.indexOf('&', start);
    if (end < 0) end = url.length;
    const equals = url.indexOf('=', start);
    if (equals >= 0 && equals < end && isTokenKey(url, start, equals)) {
      redacted += `${url.slice(copied, equals + 1)}[redacted]`;
      copied = end;
    }
    start = end + 1;
  }
  return copied === 0 ? url : redacted + url.slice(copied);
}

export type RequestLog = (line: RequestLine) => void;

const INFO = pino.levels.values.info!;

export function requestLog(baseLogger: FastifyBaseLogger): RequestLog {
  const logger = baseLogger as pino.Logger;
  const own = logger as unknown as Record<symbol, unknown>;
  const { lsCacheSym, timeSym, chindingsSym, streamSym, messageKeySym, endSym } = pino.symbols;
  const level = (own[lsCacheSym] as Record<number, string>)[INFO]!;
  const time = own[timeSym] as () => string;
  const stream = own[streamSym] as pino.DestinationStream;
  const message = `,${JSON.stringify(own[messageKeySym])}:"request"${own[endSym] as string}`;
  return (line) => {
    if (!logger.isLevelEnabled('info')) return;
    const remote = line.remote === undefined ? '' : `,"remote":${JSON.stringify(line.remote)}`;
    stream.write(
      `${level}${time()}${own[chindingsSym] as string},"reqId":${JSON.stringify(line.reqId)},"method":${JSON.stringify(line.method)},"url":${JSON.stringify(redactUrl(line.url))}${remote},"status":${line.status},"ms":${Math.round(line.ms * 100) / 100}${message}`,
    );
  };
}
