// Secrets are never logged (issue 8): tokens in headers, the query or the body, passwords,
// md5 credentials and API keys stay out of the info-level request log.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/api/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger, startServices } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { credentialsOf } from '../../src/services/passwords.ts';

test('no token, password, credentials or API key reaches the log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-log-'));
  let log = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      log += String(chunk);
      done();
    },
  });
  const services = await startServices(loadConfig({ db: join(dir, 'log.db') }, {}));
  const app = await buildApp(services, { corsOrigin: '*', bodyLimit: 1 << 20, registry: new Registry(), logger: createLogger('trace', sink) });
  try {
    const account = await bootstrapAccount(services.ctx, SYSTEM_ACTOR, { name: 'Log', realm: 'log.test', username: 'admin', password: 'hunter2-password' });
    const credentials = credentialsOf('admin', 'hunter2-password');
    const login = await app.inject({ method: 'PUT', url: '/v2/user_auth', payload: { data: { credentials, account_realm: 'log.test' } } });
    assert.equal(login.statusCode, 201);
    const token = login.json().auth_token as string;
    const apiKey = (await app.inject({ method: 'GET', url: `/v2/accounts/${account.id}/api_key`, headers: { 'x-auth-token': token } })).json().data.api_key as string;
    await app.inject({ method: 'PUT', url: '/v2/api_auth', payload: { data: { api_key: apiKey } } });
    await app.inject({ method: 'GET', url: `/v2/token_auth?auth_token=${token}` });
    await app.inject({ method: 'GET', url: '/v2/token_auth', headers: { authorization: `Bearer ${token}` } });
    // A key the query parser decodes to auth_token is a token too, and hidden the same way.
    for (const key of ['auth%5Ftoken', '%61uth_tok%65n', '%61%75%74%68%5f%74%6f%6b%65%6e']) {
      assert.equal((await app.inject({ method: 'GET', url: `/v2/token_auth?${key}=${token}` })).statusCode, 200, key);
      assert.ok(log.includes(`?${key}=[redacted]`), `${key} is logged redacted`);
    }
    await app.inject({ method: 'PUT', url: `/v2/accounts/${account.id}/users`, headers: { 'x-auth-token': token }, payload: { data: { username: 'u2', password: 'another-secret-pw' } } });
    await app.inject({ method: 'PUT', url: '/v2/user_auth', payload: { data: { credentials: credentialsOf('admin', 'wrong'), account_realm: 'log.test' } } });

    assert.ok(log.includes('"msg":"request"'), 'the request log is on');
    assert.ok(log.includes('auth_token=[redacted]'), 'the query-string token is logged redacted');
    for (const secret of [token, credentials, apiKey, 'hunter2-password', 'another-secret-pw']) {
      assert.ok(!log.includes(secret), `a secret leaked into the log: ${secret.slice(0, 12)}…`);
    }
  } finally {
    await app.close();
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
