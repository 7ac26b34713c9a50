// The one info line per answered request, written by both the decision fast path and Fastify's
// routes (api.md §8 keeps it in the HTTP comparison).
//
// pino formats any object with a generic loop that looks up a serializer and a stringifier for
// each key and escapes each key and value: 1.2–1.3 µs a line, more than the envelope of a
// decision answer. A request line always has the same fields, so it is assembled here from the
// logger's own pieces (level label, time, bindings, message key, line end) and written to the
// logger's own destination: the line pino writes for the same object
// (test/api/request-log.test.ts), in 0.7–0.8 µs (`npm run bench`, "Logging"). It assumes what
// createLogger (src/main.ts) makes: no mixin, log formatter or write hook, and no redaction that
// reaches these fields.

import type { FastifyBaseLogger } from 'fastify';
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

/** A query-string token is hidden from the log. */
const redactUrl = (url: string) => (url.includes('auth_token=') ? url.replace(/([?&]auth_token=)[^&]*/g, '$1[redacted]') : url);

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
