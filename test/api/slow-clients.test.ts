// Limits against slow clients (issue 8): a request whose headers or body do not arrive within the
// request timeout is answered 408 in KAZOO's error shape and its connection closed; a connection
// that says nothing is closed. Over a real socket: app.inject has no clock on the wire.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.ts';
import { loadConfig } from '../../src/config.ts';
import { startServices, type Services } from '../../src/main.ts';

const TIMEOUT_MS = 600;
const dir = mkdtempSync(join(tmpdir(), 'ipwarden-slow-'));
let services: Services;
let app: FastifyInstance;
let port: number;

before(async () => {
  services = await startServices(loadConfig({ db: join(dir, 'slow.db') }, {}));
  app = await buildApp(services, { corsOrigin: '*', bodyLimit: 1 << 20, registry: new Registry(), requestTimeoutMs: TIMEOUT_MS });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
});

after(async () => {
  await app.close();
  await services.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `chunks` (one every `everyMs`), then collects what the server says until it closes. */
function converse(chunks: string[], everyMs: number): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < chunks.length && socket.writable) socket.write(chunks[i++]!);
    }, everyMs);
    socket.on('data', (data) => (reply += data.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ reply, ms: performance.now() - started });
    });
    setTimeout(() => reject(new Error(`the server never closed the connection; it said: ${reply}`)), 10_000).unref();
  });
}

function assertTimedOut(reply: string) {
  const [head, body] = reply.split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1\.1 408 /);
  assert.match(head!, /content-type: application\/json/i);
  const json = JSON.parse(body!);
  assert.equal(json.status, 'error');
  assert.equal(json.error, '408');
  assert.equal(json.message, 'request timeout');
}

test('headers trickling in slower than the request timeout: 408 in the error shape, connection closed', { timeout: 15_000 }, async () => {
  // A slow-loris: one header line every 200 ms, never finishing.
  const lines = Array.from({ length: 40 }, (_, i) => (i === 0 ? 'GET /v2/health HTTP/1.1\r\nHost: x\r\n' : `X-Slow-${i}: y\r\n`));
  const { reply, ms } = await converse(lines, 200);
  assertTimedOut(reply);
  assert.ok(ms < TIMEOUT_MS + 3000, `closed after ${ms} ms`);
});

test('a body slower than the request timeout: 408, connection closed', { timeout: 15_000 }, async () => {
  const head = 'PUT /v2/user_auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{"data":';
  const { reply, ms } = await converse([head, ...Array.from({ length: 40 }, () => ' ')], 200);
  assertTimedOut(reply);
  assert.ok(ms < TIMEOUT_MS + 3000, `closed after ${ms} ms`);
});

test('a connection that sends nothing is closed', { timeout: 15_000 }, async () => {
  const { reply, ms } = await converse([], 1000);
  assert.ok(ms < TIMEOUT_MS + 3000, `closed after ${ms} ms`);
  assert.ok(reply === '' || /^HTTP\/1\.1 408 /.test(reply), reply);
});

test('a prompt request on the same server is answered normally', async () => {
  const { reply } = await converse(['GET /v2/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], 10);
  assert.match(reply, /^HTTP\/1\.1 200 /);
});
