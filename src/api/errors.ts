// The single registry of error codes → KAZOO's error shapes (api.md §1 table).

import type { FastifyReply, FastifyRequest } from 'fastify';
import { Failure, StoreUnavailableError, type FailureKind } from '../services/errors.ts';

export interface ErrorSpec {
  status: number;
  message: string;
  data: Record<string, unknown>;
  retryAfter?: number;
}

const BY_KIND: Record<FailureKind, (f: Failure) => ErrorSpec> = {
  validation: (f) => ({ status: 400, message: 'validation error', data: f.details.fields ?? { body: { invalid: { message: f.message } } } }),
  not_found: (f) => ({ status: 404, message: 'bad_identifier', data: { cause: f.details.cause, message: 'bad identifier' } }),
  forbidden: () => ({ status: 403, message: 'forbidden', data: { message: 'forbidden' } }),
  unauthorized: () => ({ status: 401, message: 'invalid_credentials', data: { message: 'invalid credentials' } }),
  conflict: (f) => ({ status: 409, message: 'datastore_conflict', data: f.details.cause === undefined ? { message: 'conflicting documents' } : { message: 'conflicting documents', cause: f.details.cause } }),
  has_descendants: (f) => ({ status: 409, message: 'account_has_descendants', data: { message: 'account_has_descendants', cause: f.details.cause } }),
  precondition_failed: () => ({ status: 412, message: 'precondition failed', data: { message: 'revision mismatch' } }),
  throttled: (f) => ({ status: 429, message: 'too many requests', data: { message: 'too many requests' }, ...(f.details.retryAfter === undefined ? {} : { retryAfter: f.details.retryAfter }) }),
};

export const invalidEnvelope = (): ErrorSpec => ({ status: 400, message: 'invalid request envelope', data: { message: 'the body must be {"data": {...}}' } });
export const invalidJson = (): ErrorSpec => ({ status: 400, message: 'validation error', data: { json: { invalid: { message: 'All JSON must be valid', target: 'body' } } } });
export const methodNotAllowed = (): ErrorSpec => ({ status: 405, message: 'invalid_method', data: { message: 'method not allowed' } });
export const routeNotFound = (path: string): ErrorSpec => ({ status: 404, message: 'bad_identifier', data: { cause: path, message: 'bad identifier' } });
export const tooLarge = (): ErrorSpec => ({ status: 413, message: 'request entity too large', data: { message: 'request entity too large' } });
export const unsupportedMedia = (): ErrorSpec => ({ status: 415, message: 'unsupported media type', data: { message: 'unsupported media type' } });
export const internal = (): ErrorSpec => ({ status: 500, message: 'internal error', data: { message: 'internal error' } });
export const unavailable = (): ErrorSpec => ({ status: 503, message: 'datastore fatal error', data: { message: 'datastore fatal error' } });

class HttpFailure extends Error {
  constructor(readonly spec: ErrorSpec) {
    super(spec.message);
  }
}

/** Throws an error that the app's error handler sends as `spec`. */
export function fail(spec: ErrorSpec): never {
  throw new HttpFailure(spec);
}

/** Maps anything thrown to its KAZOO error; unknown errors are 500s without detail. */
export function specOf(error: unknown): ErrorSpec {
  if (error instanceof HttpFailure) return error.spec;
  if (error instanceof Failure) return BY_KIND[error.kind](error);
  if (error instanceof StoreUnavailableError) return unavailable();
  const e = error as { statusCode?: number; code?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) return tooLarge();
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.statusCode === 415) return unsupportedMedia();
  if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return invalidJson();
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, message: 'bad request', data: { message: 'bad request' } };
  }
  return internal();
}

/** KAZOO's error body for `spec`, answering the request with this id (and token, echoed). */
export function errorBody(request: { id: string; authToken?: string }, spec: ErrorSpec): Record<string, unknown> {
  const body: Record<string, unknown> = {
    data: spec.data,
    error: String(spec.status),
    message: spec.message,
    request_id: request.id,
    status: spec.status === 503 ? 'fatal' : 'error',
    timestamp: new Date().toISOString(),
  };
  const token = request.authToken;
  if (token !== undefined) body.auth_token = token;
  return body;
}

export function sendError(request: FastifyRequest, reply: FastifyReply, spec: ErrorSpec) {
  // Fastify drops the content type before an error handler runs (app.ts sets it for the rest).
  reply.header('content-type', 'application/json');
  if (spec.retryAfter !== undefined) reply.header('Retry-After', String(spec.retryAfter));
  return reply.code(spec.status).send(errorBody(request, spec));
}
