// The decision endpoints (and an account's list), answered straight from node:http (issue 6).
//
// An SBC asks `GET …/access_lists/check` or `GET /v2/access_lists/decide` about every SIP request
// and the answer comes from memory, so here the framework is most of the cost. This file is only
// the HTTP framing: the answer is the same service function's that the routes in
// resources/access-lists.ts call, with the same headers, envelope, log line and metrics. It
// answers a GET without a body whose token was verified within the last second, when the service
// gives a decision, a list or a 400 about the query. Anything else (no token or an unknown one, a
// 403, a 404 that may need a catch-up from the database, a repeated parameter, a trailing slash,
// HEAD, …) returns false before any work is visible, and Fastify answers it through those routes.
// test/api/fast-path.test.ts holds both paths to the same answers.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import * as lists from '../services/access-lists.ts';
import type { Actor } from '../services/actor.ts';
import { Failure } from '../services/errors.ts';
import { envelopeJson, tokenOf } from './envelope.ts';
import { errorBody, specOf, type ErrorSpec } from './errors.ts';
import type { HttpMetrics, RouteSeries } from './metrics.ts';
import type { RequestLog } from './request-log.ts';
import type { ApiDeps } from './route.ts';
import { decisionJson, listJson, realmDecisionJson } from './resources/access-lists.ts';

export const CHECK_ROUTE = '/v2/accounts/:account_id/access_lists/check';
export const DECIDE_ROUTE = '/v2/access_lists/decide';
export const LIST_ROUTE = '/v2/accounts/:account_id/access_lists';

const ACCOUNTS = '/v2/accounts/';
const CHECK_TAIL = '/access_lists/check';
const LIST_TAIL = '/access_lists';
const NO_QUERY: Query = Object.freeze({});

export interface FastPathOptions {
  deps: ApiDeps;
  metrics: HttpMetrics;
  /** The request line's writer (none logs nothing). */
  log: RequestLog | undefined;
  /** The app's request id generator (used when the request brings no X-Request-ID). */
  nextId: () => string;
  cors: (origin: string | undefined) => Readonly<Record<string, string>>;
}

/** A parsed query in which no parameter is repeated. */
type Query = Record<string, string | undefined>;

/** The query, unless a parameter is repeated (the routes refuse that). */
function queryOf(text: string): Query | undefined {
  const query = parseQuery(text);
  for (const value of Object.values(query)) if (typeof value !== 'string') return undefined;
  return query as Query;
}

/** `handle(req, res)`: true when it answered, false to leave the request to Fastify. */
export function decisionFastPath(options: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { deps, metrics, log, nextId, cors } = options;
  const { ctx } = deps;
  const checkSeries = metrics.route('GET', CHECK_ROUTE);
  const decideSeries = metrics.route('GET', DECIDE_ROUTE);
  const listSeries = metrics.route('GET', LIST_ROUTE);

  /**
   * Answers with the `data` that `answerOf` gives the caller, or with its 400; false when the
   * token is not one verified within the last second, or `answerOf` gives undefined (ask the
   * database) or fails in any other way.
   */
  function respond(req: IncomingMessage, res: ServerResponse, started: number, series: RouteSeries, query: Query, answerOf: (actor: Actor) => string | undefined): boolean {
    const token = tokenOf(req.headers, query, undefined);
    const session = token === undefined ? undefined : deps.auth.cachedSession(token);
    if (session === undefined) return false;
    let data: string | undefined;
    let failure: ErrorSpec | undefined;
    try {
      data = answerOf(session.actor);
      if (data === undefined) return false;
    } catch (error) {
      if (!(error instanceof Failure) || error.kind !== 'validation') return false;
      failure = specOf(error);
    }
    // As Fastify's genReqId wrapper: the client's X-Request-ID, else a new one.
    const id = (req.headers['x-request-id'] as string | undefined) || nextId();
    const status = failure?.status ?? 200;
    const body = failure === undefined ? envelopeJson(token, id, data) : JSON.stringify(errorBody({ id, authToken: token }, failure));
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': id, ...cors(req.headers.origin), 'content-length': Buffer.byteLength(body) });
    res.end(body);
    const ms = performance.now() - started;
    series.record(status, ms);
    log?.({ reqId: id, method: 'GET', url: req.url!, remote: req.socket.remoteAddress, status, ms });
    return true;
  }

  return (req, res) => {
    // A body (rare on a GET) may carry the token: Fastify reads it. An empty one is no body (the
    // PHP and Python SDKs send `Content-Length: 0` with every GET).
    const length = req.headers['content-length'];
    if (req.method !== 'GET' || (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined) return false;
    const url = req.url!;
    const started = performance.now();
    const mark = url.indexOf('?');
    const path = mark < 0 ? url : url.slice(0, mark);
    const query = mark < 0 ? NO_QUERY : queryOf(url.slice(mark + 1));
    if (query === undefined) return false;
    if (path === DECIDE_ROUTE) return respond(req, res, started, decideSeries, query, (actor) => realmDecisionJson(lists.decideFromIndex(ctx, actor, query)));
    if (!path.startsWith(ACCOUNTS)) return false;
    const tail = path.endsWith(CHECK_TAIL) ? CHECK_TAIL : path.endsWith(LIST_TAIL) ? LIST_TAIL : undefined;
    if (tail === undefined) return false;
    const accountId = path.slice(ACCOUNTS.length, path.length - tail.length);
    // An id with a slash or an escape is a different route, or one Fastify must decode.
    if (accountId.length === 0 || accountId.includes('/') || accountId.includes('%')) return false;
    if (tail === CHECK_TAIL) return respond(req, res, started, checkSeries, query, (actor) => decisionJson(lists.checkFromIndex(ctx, actor, accountId, query)));
    return respond(req, res, started, listSeries, query, (actor) => {
      const list = lists.accessListFromIndex(ctx, actor, accountId);
      return list === undefined ? undefined : listJson(list);
    });
  };
}
