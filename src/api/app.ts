// buildApp(deps) → the Fastify app, without listening (tests call app.inject). The order of
// registration is the order below: body parsing, CORS, headers, errors, metrics, routes.

import swagger from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { parse as parseQuery } from 'node:querystring';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';
import type { Registry } from 'prom-client';
import type { Actor } from '../services/actor.ts';
import { Failure, invalid } from '../services/errors.ts';
import { pace } from '../services/context.ts';
import { registerConsole } from './console.ts';
import { tokenOf } from './envelope.ts';
import { errorBody, fail, methodNotAllowed, routeNotFound, sendError, specOf } from './errors.ts';
import { decisionFastPath } from './fast-path.ts';
import { discardRestOfBody, isDiscarding, withholdsContinue } from './oversized-body.ts';
import { requestLog, type RequestLog } from './request-log.ts';
import { NOSNIFF, sharedHeaders } from './headers.ts';
import { HttpMetrics, type RouteSeries } from './metrics.ts';
import type { ApiDeps, Method, RouteSpec } from './route.ts';
import { routes as accountRoutes } from './resources/accounts.ts';
import { routes as accessListRoutes } from './resources/access-lists.ts';
import { routes as auditRoutes } from './resources/audit.ts';
import { routes as authRoutes } from './resources/auth.ts';
import { routes as deviceRoutes } from './resources/devices.ts';
import { routes as exportRoutes, xmlCurlRoutes } from './resources/exports.ts';
import { routes as ipRoutes } from './resources/ips.ts';
import { routes as statsRoutes } from './resources/stats.ts';
import { routes as systemRoutes } from './resources/system.ts';
import { routes as trunkRoutes } from './resources/trunks.ts';
import { routes as userRoutes } from './resources/users.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The metric series of the route that answered, bound when the route was registered. */
    series: RouteSeries | null;
  }
}

export interface AppOptions {
  corsOrigin: string;
  /** Largest accepted body, bytes (api.md §1: 1 MiB). */
  bodyLimit: number;
  registry: Registry;
  /**
   * The registry as a scrape sees it now: with SIP workers, theirs added in (main.ts). The
   * console's figures read it. Defaults to `registry`.
   */
  currentMetrics?: () => Promise<Registry>;
  /** A pino logger; none logs nothing. */
  logger?: FastifyBaseLogger;
  /** Slow clients: a request must arrive within this many ms. */
  requestTimeoutMs?: number;
  /** Load balancers whose X-Forwarded-For names the source (request.ip): the login throttle counts by it. */
  trustProxy?: string[];
  /** HTTPS with this certificate and key (tls.ts); absent: plain HTTP. */
  tls?: SecureContextOptions;
}

/** Every route of the API, in one table. */
export const ROUTES: readonly RouteSpec[] = [
  ...authRoutes,
  ...accountRoutes,
  ...userRoutes,
  ...deviceRoutes,
  ...accessListRoutes,
  ...ipRoutes,
  ...trunkRoutes,
  ...auditRoutes,
  ...systemRoutes,
  ...exportRoutes,
  ...statsRoutes,
];

const METHODS: readonly Method[] = ['GET', 'PUT', 'POST', 'PATCH', 'DELETE'];

/**
 * KAZOO-style 32-hex request ids without a random draw per request: a random per-process prefix
 * and a counter, unique across nodes and restarts.
 */
function requestIds(): () => string {
  const prefix = randomBytes(8).toString('hex');
  let counter = 0;
  return () => prefix + (++counter).toString(16).padStart(16, '0');
}

/**
 * Every answered request: counted and timed by route and status, and one info-level log line
 * (headers are not logged). Both in one hook: hooks cost per request, even empty ones.
 */
function recordResponses(app: FastifyInstance, metrics: HttpMetrics, log: RequestLog | undefined): void {
  app.addHook('onResponse', (request, reply, done) => {
    const ms = reply.elapsedTime;
    const status = reply.statusCode;
    (request.series ?? metrics.route(request.method, request.routeOptions.url ?? 'unknown')).record(status, ms);
    log?.({ reqId: request.id, method: request.method, url: request.url, remote: request.ip, status, ms });
    done();
  });
}

/** Objects as JSON; strings (already serialised, or /metrics' text) as they are. */
const serializeJson = (payload: unknown) => (typeof payload === 'string' ? payload : JSON.stringify(payload));

/** An actor with no rights, for the routes that need no token. */
const ANONYMOUS: Actor = { accountId: '', path: '\u0000', superduper: false, admin: false };

/** The token of a request as Fastify parsed it. */
const tokenOfRequest = (request: FastifyRequest) => tokenOf(request.headers, request.query as Record<string, unknown>, request.body);

/** The caller of a valid token, else (no token, any failure, the database down) the anonymous one. */
async function optionalActor(deps: ApiDeps, request: FastifyRequest): Promise<Actor> {
  const token = tokenOfRequest(request);
  if (token === undefined) return ANONYMOUS;
  try {
    const { actor } = await deps.auth.verify(token);
    request.authToken = token;
    return actor;
  } catch {
    return ANONYMOUS;
  }
}

/** A query parameter given twice is ambiguous (which `ip` is the source?): 400, naming each. */
function refuseRepeatedParameters(query: Record<string, unknown>): void {
  const repeated = Object.keys(query).filter((name) => Array.isArray(query[name]));
  if (repeated.length > 0) throw invalid(Object.fromEntries(repeated.map((name) => [name, { type: { message: 'Value must be given once', target: 'query' } }])));
}

/**
 * A request the HTTP layer gave up on (too slow, malformed) is answered in KAZOO's error shape too,
 * then the connection is closed.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A request already answered 413 whose body is still arriving gets no second answer.
  if (!socket.writable || isDiscarding(socket)) {
    socket.destroy();
    return;
  }
  const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'ERR_HTTP_HEADERS_TIMEOUT';
  const status = timedOut ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const message = timedOut ? 'request timeout' : status === 431 ? 'request header fields too large' : 'bad request';
  const body = JSON.stringify({ data: { message }, error: String(status), message, status: 'error', timestamp: new Date().toISOString() });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export async function buildApp(deps: ApiDeps, options: AppOptions): Promise<FastifyInstance> {
  const timeout = options.requestTimeoutMs ?? 30_000;
  const metrics = new HttpMetrics(options.registry);
  const nextId = requestIds();
  const cors = sharedHeaders(options.corsOrigin);
  const log = options.logger ? requestLog(options.logger) : undefined;
  const fastPath = decisionFastPath({ deps, metrics, log, nextId, cors });
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimit,
    ...(options.trustProxy ? { trustProxy: options.trustProxy } : {}),
    requestIdHeader: 'x-request-id',
    genReqId: nextId,
    // Node's querystring, which the fast path uses too: both read a query alike.
    // Only names the scheme in Fastify's "listening at" line; the server is made below.
    ...(options.tls ? { https: true as const } : {}),
    routerOptions: { ignoreTrailingSlash: true, querystringParser: (text) => parseQuery(text) },
    // The decision endpoints are tried first, outside Fastify (fast-path.ts); what they leave,
    // Fastify answers. The server is set up as Fastify sets up its own.
    serverFactory: (handler) => {
      // Slow clients (issue 8): the whole request, headers included, must arrive in time (Node
      // checks every connectionsCheckingInterval; a connection that sends nothing is waiting for
      // headers), and a kept-alive connection idle for as long is closed. No per-socket timer:
      // it would be re-armed on every request.
      const dispatch = (req: IncomingMessage, res: ServerResponse) => {
        if (!fastPath(req, res)) handler(req, res);
      };
      const serverOptions = { headersTimeout: timeout, requestTimeout: timeout, connectionsCheckingInterval: Math.min(1000, Math.ceil(timeout / 4)) };
      const server = options.tls ? createHttpsServer({ ...serverOptions, ...options.tls }, dispatch) : createServer(serverOptions, dispatch);
      // A body declared over the limit is refused before the client sends it (oversized-body.ts).
      server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
        if (!withholdsContinue(req, options.bodyLimit)) res.writeContinue();
        dispatch(req, res);
      });
      server.keepAliveTimeout = timeout;
      return server;
    },
    // One line per request, written when it completes (recordResponses), rather than two.
    logController: new LogController({ disableRequestLogging: true }),
    // No pino child per request (its bindings cost more than the line): the request log line
    // and the error line carry the request id themselves.
    ...(options.logger ? { childLoggerFactory: (logger: FastifyBaseLogger) => logger } : {}),
    clientErrorHandler: (error, socket) => answerClientError(error as Error & { code?: string }, socket),
    // A path Fastify cannot even decode (`/v2/ips/%zz`) is an unknown identifier, in our shape.
    // No hooks run here and reply.send would add a charset, so the answer is written raw.
    frameworkErrors: (_error, request, reply) => {
      const spec = routeNotFound(request.url.split('?')[0]!);
      const body = JSON.stringify(errorBody(request, spec));
      reply.hijack();
      reply.raw.writeHead(spec.status, { 'Content-Type': 'application/json', ...NOSNIFF, 'Content-Length': Buffer.byteLength(body), 'X-Request-ID': request.id });
      reply.raw.end(body);
    },
  });

  // api.md §1: a body is JSON whatever its Content-Type; an empty body is no body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(Object.assign(new Error('invalid JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined);
    }
  });

  // CORS (api.md §1): a preflight (any OPTIONS) is answered 204 with the allowed methods and headers.
  const allowMethods = [...METHODS, 'HEAD', 'OPTIONS'].join(', ');
  const allowHeaders = ['Content-Type', 'X-Auth-Token', 'X-Kazoo-Cluster-ID', 'If-Match', 'X-Request-ID', 'Authorization'].join(', ');

  // api.md §1 on every response: exactly application/json (Fastify adds a charset to JSON it
  // serialises itself, not to what a reply serializer returns), the request id, CORS and
  // nosniff. Set before the route runs; a route answering another type (/metrics) sets its own.
  app.decorateRequest('series', null);
  app.addHook('onRequest', (request, reply, done) => {
    reply.serializer(serializeJson);
    reply.header('content-type', 'application/json');
    reply.header('x-request-id', request.id);
    reply.headers(cors(request.headers.origin));
    // Sixteen requests read in one poll would be parsed, checked and run back to back: each starts
    // once the turn has time (issue 23), so timers and decisions (the fast path) go between them.
    void pace().then(() => done());
  });
  app.options('*', { schema: { hide: true } }, (_request, reply) => {
    reply.code(204).header('access-control-allow-methods', allowMethods).header('access-control-allow-headers', allowHeaders).header('content-length', '0').send();
  });

  // Schemas are attached for the OpenAPI document; bodies are validated by the services (after
  // the existence checks, all errors at once), so Fastify's own validator is switched off.
  app.setValidatorCompiler(() => () => true);
  await app.register(swagger, {
    openapi: { openapi: '3.0.3', info: { title: 'ipwarden', description: 'KAZOO-compatible IP access control API', version: '0.1.0' } },
  });

  recordResponses(app, metrics, log);
  app.setErrorHandler((error, request, reply) => {
    const spec = specOf(error);
    if (spec.status === 413) discardRestOfBody(request, reply, options.bodyLimit);
    if (spec.status >= 500) request.log.error({ reqId: request.id, err: error }, 'request failed');
    return sendError(request, reply, spec);
  });
  app.setNotFoundHandler((request, reply) => sendError(request, reply, routeNotFound(request.url.split('?')[0]!)));

  const methodsByUrl = new Map<string, Set<Method>>();
  for (const spec of ROUTES) {
    const methods = methodsByUrl.get(spec.url) ?? new Set<Method>();
    methods.add(spec.method);
    methodsByUrl.set(spec.url, methods);
    const series = metrics.route(spec.method, spec.url);
    app.route({
      method: spec.method,
      url: spec.url,
      schema: { summary: spec.summary, ...(spec.body ? { body: Type.Object({ data: spec.body }) } : {}) },
      handler: async (request, reply) => {
        if (request.method === spec.method) request.series = series;
        let actor = ANONYMOUS;
        if (spec.auth === 'optional') {
          actor = await optionalActor(deps, request);
        } else if (spec.auth !== 'none') {
          const token = tokenOfRequest(request);
          if (token === undefined) throw new Failure('unauthorized', 'invalid_credentials');
          actor = (await deps.auth.verify(token)).actor;
          request.authToken = token;
        }
        refuseRepeatedParameters(request.query as Record<string, unknown>);
        return spec.handler({ request, reply, actor, deps });
      },
    });
  }
  for (const [url, allowed] of methodsByUrl) {
    const others = METHODS.filter((m) => !allowed.has(m));
    if (others.length === 0) continue;
    app.route({ method: others, url, schema: { hide: true }, handler: async () => fail(methodNotAllowed()) });
  }

  await app.register(xmlCurlRoutes(deps));
  app.get('/v2/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.decorate('currentMetrics', options.currentMetrics ?? (async () => options.registry));
  await registerConsole(app);
  return app;
}
