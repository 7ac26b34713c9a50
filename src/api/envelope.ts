// KAZOO's envelope, in and out (api.md §1): `{"data": {...}}` in; `{auth_token, data, request_id,
// revision, status, timestamp}` out, with the revision also as ETag; lists paginated on request.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { fail, invalidEnvelope } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token the caller sent (echoed in the envelope as KAZOO does). */
    authToken?: string;
  }
}

/**
 * The token a request carries (api.md §2), looked for in this order: the X-Auth-Token header,
 * the `auth_token` query parameter, the body's `auth_token`, a Bearer authorization.
 */
export function tokenOf(headers: IncomingHttpHeaders, query: Record<string, unknown>, body: unknown): string | undefined {
  const header = headers['x-auth-token'];
  if (typeof header === 'string' && header !== '') return header;
  if (typeof query.auth_token === 'string' && query.auth_token !== '') return query.auth_token;
  const fromBody = body !== null && typeof body === 'object' ? (body as Record<string, unknown>).auth_token : undefined;
  if (typeof fromBody === 'string' && fromBody !== '') return fromBody;
  const bearer = headers.authorization;
  if (typeof bearer === 'string' && bearer.startsWith('Bearer ')) return bearer.slice(7).trim();
  return undefined;
}

export interface SendOptions {
  revision?: string;
  status?: number;
  location?: string;
  extra?: Record<string, unknown>;
}

let lastMs = 0;
let lastIso = '';
/** The ISO timestamp, formatted once per millisecond. */
function timestamp(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

let lastToken: string | undefined;
let lastTokenField = '';
/**
 * `"auth_token":"…",`, escaped once per token: a token is most of an envelope's text, and a
 * client (an SBC asking about every call) sends the same one request after request.
 */
function tokenField(token: string): string {
  if (token !== lastToken) {
    lastToken = token;
    lastTokenField = `"auth_token":${JSON.stringify(token)},`;
  }
  return lastTokenField;
}

/**
 * The envelope around `dataJson`, data already serialised: exactly the text JSON.stringify would
 * give for {auth_token, data, ...extra, request_id, revision, status, timestamp}, without building
 * and walking that object (the token alone is 200+ characters).
 */
export function envelopeJson(authToken: string | undefined, requestId: string, dataJson: string | undefined, extra?: Record<string, unknown>, revision?: string): string {
  let body = '{';
  if (authToken !== undefined) body += tokenField(authToken);
  if (dataJson !== undefined) body += `"data":${dataJson},`;
  if (extra !== undefined) {
    for (const [key, value] of Object.entries(extra)) {
      const json = JSON.stringify(value);
      if (json !== undefined) body += `${JSON.stringify(key)}:${json},`;
    }
  }
  body += `"request_id":${JSON.stringify(requestId)},`;
  if (revision !== undefined) body += `"revision":${JSON.stringify(revision)},`;
  return `${body}"status":"success","timestamp":"${timestamp()}"}`;
}

export function sendJson(request: FastifyRequest, reply: FastifyReply, dataJson: string | undefined, options: SendOptions = {}) {
  if (options.revision !== undefined) reply.header('ETag', options.revision);
  if (options.location !== undefined) reply.header('Location', options.location);
  if (options.status !== undefined) reply.code(options.status);
  return reply.send(envelopeJson(request.authToken, request.id, dataJson, options.extra, options.revision));
}

export function send(request: FastifyRequest, reply: FastifyReply, data: unknown, options: SendOptions = {}) {
  return sendJson(request, reply, JSON.stringify(data), options);
}

/** A body's `data`: the object a write sends. */
export type Data = Record<string, unknown>;

/** A body's `data` object; a PUT/POST/PATCH without one is an invalid envelope. */
export function dataOf(request: FastifyRequest): Data {
  const body = request.body as Record<string, unknown> | undefined | null;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) fail(invalidEnvelope());
  const data = body.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) fail(invalidEnvelope());
  const copy = { ...(data as Record<string, unknown>) };
  delete copy.ui_metadata;
  return copy;
}

/** The body's `data` when it is an array (a bulk create), else undefined. */
export function dataListOf(request: FastifyRequest): unknown[] | undefined {
  const body = request.body as Record<string, unknown> | undefined | null;
  if (body === null || body === undefined || typeof body !== 'object' || Array.isArray(body)) return undefined;
  return Array.isArray(body.data) ? body.data : undefined;
}

/** `data` when the body has one (bodies that may be absent), else undefined. */
export function optionalDataOf(request: FastifyRequest): Record<string, unknown> | undefined {
  const body = request.body as Record<string, unknown> | undefined | null;
  if (body === null || body === undefined || typeof body !== 'object') return undefined;
  const data = body.data;
  return data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
}

/** The `If-Match` revision, when sent. */
export function ifMatch(request: FastifyRequest): string | undefined {
  const value = request.headers['if-match'];
  return typeof value === 'string' && value !== '' ? value.replace(/^W\//, '').replace(/^"|"$/g, '') : undefined;
}

/** Every item unless `page_size` is given; then `start_key` continues at an item's key. */
export function sendList<T>(request: FastifyRequest, reply: FastifyReply, items: T[], keyOf: (item: T) => string, present: (item: T) => unknown) {
  const query = request.query as Record<string, string | undefined>;
  const size = Number(query.page_size);
  if (!query.page_size || !Number.isInteger(size) || size <= 0) return send(request, reply, items.map(present));
  let start = 0;
  if (query.start_key !== undefined) {
    start = items.findIndex((item) => keyOf(item) === query.start_key);
    if (start < 0) start = items.length;
  }
  const page = items.slice(start, start + size);
  const extra: Record<string, unknown> = { page_size: page.length };
  if (query.start_key !== undefined) extra.start_key = query.start_key;
  const next = items[start + size];
  if (next !== undefined) extra.next_start_key = keyOf(next);
  return send(request, reply, page.map(present), { extra });
}
