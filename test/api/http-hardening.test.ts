// Issue 20, the HTTP API: every answer says `X-Content-Type-Options: nosniff` (the decision fast
// path, the routes, errors, unknown routes, preflights, the answers Node's HTTP layer gives up
// with), and anonymous health says up or down and nothing about the index's size.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { serve, type Server } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { credentialsOf } from '../../src/services/passwords.ts';

describe('a listening server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-hardening-'));
  let server: Server;
  let base: string;
  let port: number;
  let master: string;
  let token: string;

  before(async () => {
    server = await serve(loadConfig({ db: join(dir, 'h.db'), port: '0', host: '127.0.0.1', metricsPort: '0', logLevel: 'silent', requestTimeoutMs: '500' }, {}));
    port = (server.app.server.address() as { port: number }).port;
    base = `http://127.0.0.1:${port}`;
    master = (await bootstrapAccount(server.services.ctx, SYSTEM_ACTOR, { name: 'Master', realm: 'master.test', username: 'admin', password: 'secret' })).id;
    const login = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf('admin', 'secret'), account_realm: 'master.test' } }) });
    token = ((await login.json()) as { auth_token: string }).auth_token;
    await fetch(`${base}/v2/accounts/${master}/access_lists`, { method: 'POST', headers: { 'x-auth-token': token }, body: JSON.stringify({ data: { order: 'allow,deny', cidrs: ['192.0.2.0/24'] } }) });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Raw bytes in, the raw answer out (for what fetch would not send). */
  const raw = (text: string) =>
    new Promise<string>((resolve, reject) => {
      let answer = '';
      const socket = connect(port, '127.0.0.1', () => socket.write(text));
      socket.on('data', (chunk) => (answer += chunk));
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
    });

  test('X-Content-Type-Options: nosniff on every kind of answer', async () => {
    const auth = { 'x-auth-token': token };
    const answers: Record<string, Response> = {
      'fast path (check)': await fetch(`${base}/v2/accounts/${master}/access_lists/check?ip=192.0.2.1`, { headers: auth }),
      'fast path (decide)': await fetch(`${base}/v2/access_lists/decide?ip=192.0.2.1&realm=master.test&username=x`, { headers: auth }),
      'fast path (list)': await fetch(`${base}/v2/accounts/${master}/access_lists`, { headers: auth }),
      route: await fetch(`${base}/v2/accounts/${master}`, { headers: auth }),
      'error (401)': await fetch(`${base}/v2/accounts/${master}`),
      'error (400)': await fetch(`${base}/v2/accounts/${master}/access_lists`, { method: 'POST', headers: auth, body: '{"data":' }),
      'error (405)': await fetch(`${base}/v2/accounts/${master}/access_lists`, { method: 'PUT', headers: auth, body: '{}' }),
      'error (413)': await fetch(`${base}/v2/accounts/${master}/access_lists`, { method: 'POST', headers: auth, body: 'x'.repeat(2 << 20) }),
      'unknown route': await fetch(`${base}/v2/nowhere`),
      'undecodable path': await fetch(`${base}/v2/ips/%zz`, { headers: auth }),
      preflight: await fetch(`${base}/v2/accounts/${master}`, { method: 'OPTIONS', headers: { origin: 'https://ui.example', 'access-control-request-method': 'PUT' } }),
      health: await fetch(`${base}/v2/health`),
    };
    for (const [kind, response] of Object.entries(answers)) {
      await response.arrayBuffer();
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', kind);
    }
    // The answers written by hand when Node's HTTP layer gives up: malformed, and too slow.
    assert.match(await raw('BROKEN\r\n\r\n'), /^HTTP\/1\.1 400 [^]*\r\nX-Content-Type-Options: nosniff\r\n/);
    assert.match(await raw('GET /v2/health HTTP/1.1\r\nHost: x\r\n'), /^HTTP\/1\.1 408 [^]*\r\nX-Content-Type-Options: nosniff\r\n/);
  });

  test('anonymous health says up or down and whether the index is current, nothing of its size', async () => {
    const anonymous = await fetch(`${base}/v2/health`);
    assert.equal(anonymous.status, 200);
    assert.deepEqual(((await anonymous.json()) as { data: unknown }).data, { status: 'ok', database: 'up', index: { current: true } });
    // A token that is not valid is no token here: health answers load balancers whatever they send.
    const stale = await fetch(`${base}/v2/health`, { headers: { 'x-auth-token': 'not-a-token' } });
    assert.equal(stale.status, 200);
    assert.deepEqual(((await stale.json()) as { data: unknown }).data, { status: 'ok', database: 'up', index: { current: true } });
  });

  test('a superduper admin sees the index details; another account does not', async () => {
    const superduper = (await (await fetch(`${base}/v2/health`, { headers: { 'x-auth-token': token } })).json()) as { data: { index: Record<string, unknown> } };
    assert.equal(superduper.data.index.accounts, 1);
    assert.equal(superduper.data.index.current, true);
    assert.equal(typeof superduper.data.index.trunkEntries, 'number');
    const child = await fetch(`${base}/v2/accounts/${master}`, { method: 'PUT', headers: { 'x-auth-token': token }, body: JSON.stringify({ data: { name: 'Child', realm: 'child.test' } }) });
    const childId = ((await child.json()) as { data: { id: string } }).data.id;
    await fetch(`${base}/v2/accounts/${childId}/users`, { method: 'PUT', headers: { 'x-auth-token': token }, body: JSON.stringify({ data: { username: 'boss', password: 'pw', priv_level: 'admin' } }) });
    const login = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf('boss', 'pw'), account_realm: 'child.test' } }) });
    const childToken = ((await login.json()) as { auth_token: string }).auth_token;
    const tenant = (await (await fetch(`${base}/v2/health`, { headers: { 'x-auth-token': childToken } })).json()) as { data: unknown };
    assert.deepEqual(tenant.data, { status: 'ok', database: 'up', index: { current: true } });
  });
});
