// Assertions on KAZOO's envelopes (api.md §1), shared by the API tests.

import assert from 'node:assert/strict';
import type { Harness } from './harness.ts';

export type Response = Awaited<ReturnType<Harness['request']>>;

/** The error shape of api.md §1, exactly; returns the parsed body. */
export function assertError(response: Response, status: number, message: string, data?: unknown) {
  assert.equal(response.statusCode, status, response.body);
  assert.equal(response.headers['content-type'], 'application/json');
  assert.ok(response.headers['x-request-id'], 'X-Request-ID on every response');
  const body = response.json();
  assert.equal(body.status, status === 503 ? 'fatal' : 'error');
  assert.equal(body.error, String(status));
  assert.equal(body.message, message);
  assert.equal(typeof body.request_id, 'string');
  assert.equal(typeof body.timestamp, 'string');
  assert.ok(body.data && typeof body.data === 'object');
  if (data !== undefined) assert.deepEqual(body.data, data);
  return body;
}

/** A success envelope with `status` (200 by default); returns the parsed body. */
export function ok(response: Response, status = 200) {
  assert.equal(response.statusCode, status, response.body);
  assert.equal(response.headers['content-type'], 'application/json');
  const body = response.json();
  assert.equal(body.status, 'success');
  return body;
}
