// A body over the limit is answered 413 in KAZOO's shape, and the client reads it (issue 20):
// Node's own fetch used to get EPIPE from 2 MB on, because the server closed the connection
// while the body was still arriving. Against a real server process, as a client meets it.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DISCARD_LIMIT } from '../../src/api/oversized-body.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';

const ACCOUNT = '0123456789abcdef0123456789abcdef';

describe('a body over the limit', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess();
  });
  after(() => server.stop());

  const url = () => `${server.base}/v2/accounts/${ACCOUNT}/access_lists`;

  async function assert413(response: Response): Promise<void> {
    assert.equal(response.status, 413);
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.error, '413');
    assert.equal(body.message, 'request entity too large');
    assert.equal(body.status, 'error');
  }

  for (const megabytes of [2, 20, 60]) {
    test(`${megabytes} MB sent by fetch: the client reads the 413`, async () => {
      const body = Buffer.alloc(megabytes * 1_000_000, 'a');
      // Three times: the reset the client used to meet came most times, not every time.
      for (let i = 0; i < 3; i++) await assert413(await fetch(url(), { method: 'POST', body }));
    });
  }

  test('a chunked body (no Content-Length) that grows past the limit: the client reads the 413', async () => {
    const chunk = new Uint8Array(64 * 1024);
    let sent = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (sent >= 20_000_000) return controller.close();
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
    await assert413(await fetch(url(), { method: 'POST', body, duplex: 'half' } as RequestInit));
  });

  /** A node:http request with `Expect: 100-continue` that sends its body only when told to. */
  function expecting(length: number): Promise<{ status: number; continued: boolean; body: string }> {
    return new Promise((resolve, reject) => {
      let continued = false;
      const req = request(url(), { method: 'POST', headers: { expect: '100-continue', 'content-length': length } });
      req.on('continue', () => {
        continued = true;
        req.end(Buffer.alloc(length, ' '));
      });
      req.on('response', (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, continued, body }));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
  }

  test('Expect: 100-continue with a body declared over the limit: 413 before the body is sent', async () => {
    const answer = await expecting(20_000_000);
    assert.equal(answer.status, 413);
    assert.equal(answer.continued, false, 'no 100 Continue for a body that will be refused');
    assert.equal(JSON.parse(answer.body).message, 'request entity too large');
    // A body within the limit still gets its 100 Continue and is read (here: no token, 401).
    const small = await expecting(100);
    assert.equal(small.continued, true);
    assert.equal(small.status, 401);
  });

  test('the refused body is read only up to the discard limit, then the connection is dropped', async () => {
    const socket = connect(server.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(`POST /v2/accounts/${ACCOUNT}/access_lists HTTP/1.1\r\nHost: x\r\nContent-Length: ${4 * DISCARD_LIMIT}\r\n\r\n`);
    const chunk = Buffer.alloc(256 * 1024, 'a');
    let written = 0;
    let open = true;
    void closed.then(() => (open = false));
    while (open && written < 4 * DISCARD_LIMIT) {
      if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
      written += chunk.length;
    }
    await closed;
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.ok(written >= DISCARD_LIMIT, `dropped after ${written} bytes, before the limit`);
    assert.ok(written < 2 * DISCARD_LIMIT, `still reading after ${written} bytes`);
  });
});
