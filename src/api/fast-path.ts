// The decision endpoints (and an account's list), answered straight from node:http (issue 6).
//
// An SBC asks `GET …/access_lists/check` or `GET /v2/access_lists/decide` about every SIP request,
// and the answer comes from memory in well under a microsecond, so here the framework is most of
// the cost: this path answers itself when the request is the common case — a GET without a body,
// a token verified within the last second, an account the caller may read, well-formed
// parameters — with the same headers, envelope, log line and metrics as the routes in
// resources/access-lists.ts. `GET …/access_lists` of an account (read from the index too) goes
// the same way. Anything else (no token or an unknown one, another account, a missing or
// repeated parameter, a trailing slash, HEAD, …) returns false before any work is visible, and
// Fastify answers it through those routes, errors and all. test/api/fast-path.test.ts holds both
// paths to the same answers.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { mayAccess, type Actor } from '../services/actor.ts';
import { notAnAddress } from '../services/access-lists.ts';
import { envelopeJson } from './envelope.ts';
import { errorBody, specOf } from './errors.ts';
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

/** The token, looked for where app.ts's tokenOf looks, in the same order; the body is excluded. */
function tokenOf(req: IncomingMessage, query: Query): string | undefined {
  const header = req.headers['x-auth-token'];
  if (typeof header === 'string' && header !== '') return header;
  if (query.auth_token !== undefined && query.auth_token !== '') return query.auth_token;
  const bearer = req.headers.authorization;
  if (typeof bearer === 'string' && bearer.startsWith('Bearer ')) return bearer.slice(7).trim();
  return undefined;
}

/** `handle(req, res)`: true when it answered, false to leave the request to Fastify. */
export function decisionFastPath(options: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { deps, metrics, log, nextId, cors } = options;
  const { decisions } = deps.ctx;
  const checkSeries = metrics.route('GET', CHECK_ROUTE);
  const decideSeries = metrics.route('GET', DECIDE_ROUTE);
  const listSeries = metrics.route('GET', LIST_ROUTE);

  function answer(req: IncomingMessage, res: ServerResponse, started: number, series: RouteSeries, status: number, body: string, id: string): void {
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': id, ...cors(req.headers.origin), 'content-length': Buffer.byteLength(body) });
    res.end(body);
    const ms = performance.now() - started;
    series.record(status, ms);
    log?.({ reqId: id, method: 'GET', url: req.url!, remote: req.socket.remoteAddress, status, ms });
  }

  /** The actor of a token verified within the last second, when the request carries one. */
  function actorOf(req: IncomingMessage, query: Query): { actor: Actor; token: string } | undefined {
    const token = tokenOf(req, query);
    if (token === undefined) return undefined;
    const session = deps.auth.cachedSession(token);
    return session === undefined ? undefined : { actor: session.actor, token };
  }

  function check(req: IncomingMessage, res: ServerResponse, started: number, accountId: string, query: Query): boolean {
    const { ip, device_id: deviceId } = query;
    if (ip === undefined || ip === '') return false;
    const caller = actorOf(req, query);
    if (caller === undefined) return false;
    const path = decisions.accountPath(accountId);
    if (path === undefined || !mayAccess(caller.actor, { path }, 'read')) return false;
    if (deviceId !== undefined && !decisions.hasDevice(accountId, deviceId)) return false;
    const id = requestIdOf(req);
    const verdict = decisions.decide(accountId, deviceId, ip, query.user_agent ?? '');
    if (verdict === null) {
      const spec = specOf(notAnAddress(ip));
      answer(req, res, started, checkSeries, spec.status, JSON.stringify(errorBody({ id, authToken: caller.token }, spec)), id);
    } else {
      answer(req, res, started, checkSeries, 200, envelopeJson(caller.token, id, decisionJson(verdict)), id);
    }
    return true;
  }

  function decide(req: IncomingMessage, res: ServerResponse, started: number, query: Query): boolean {
    const { ip, realm } = query;
    if (!ip || !realm) return false;
    const caller = actorOf(req, query);
    if (caller === undefined || !caller.actor.superduper || !caller.actor.admin) return false;
    const id = requestIdOf(req);
    const data = realmDecisionJson(decisions.decideByRealm(ip, realm, query.username ?? '', query.user_agent ?? ''));
    answer(req, res, started, decideSeries, 200, envelopeJson(caller.token, id, data), id);
    return true;
  }

  /** The query, unless a parameter is repeated (the routes refuse that). */
  function queryOf(text: string): Query | undefined {
    const query = parseQuery(text);
    for (const value of Object.values(query)) if (typeof value !== 'string') return undefined;
    return query as Query;
  }

  /** As Fastify's genReqId wrapper: the client's X-Request-ID, else a new one. */
  const requestIdOf = (req: IncomingMessage) => (req.headers['x-request-id'] as string | undefined) || nextId();

  /** An account's own list, as the GET route reads it from the index when it is current. */
  function list(req: IncomingMessage, res: ServerResponse, started: number, accountId: string, query: Query): boolean {
    const stored = decisions.storedAccessList(accountId);
    const path = decisions.accountPath(accountId);
    if (stored === undefined || path === undefined) return false;
    const caller = actorOf(req, query);
    if (caller === undefined || !mayAccess(caller.actor, { path }, 'read')) return false;
    const id = requestIdOf(req);
    answer(req, res, started, listSeries, 200, envelopeJson(caller.token, id, listJson(stored)), id);
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
    if (path === DECIDE_ROUTE) return decide(req, res, started, query);
    if (!path.startsWith(ACCOUNTS)) return false;
    const tail = path.endsWith(CHECK_TAIL) ? CHECK_TAIL : path.endsWith(LIST_TAIL) ? LIST_TAIL : undefined;
    if (tail === undefined) return false;
    const accountId = path.slice(ACCOUNTS.length, path.length - tail.length);
    // An id with a slash or an escape is a different route, or one Fastify must decode.
    if (accountId.length === 0 || accountId.includes('/') || accountId.includes('%')) return false;
    return tail === CHECK_TAIL ? check(req, res, started, accountId, query) : list(req, res, started, accountId, query);
  };
}
