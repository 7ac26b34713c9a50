// Issue 2, api.md §1 and the auth half of §2: the envelope, the error shapes, headers, CORS, body
// parsing, token transport, logins, token lifetime, brute force, revisions, pagination, OpenAPI.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentialsOf } from '../../src/services/passwords.ts';
import { assertError, ok } from '../support/responses.ts';
import { TestClock } from '../support/clock.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(() => h.close());

const userAuth = (data: Record<string, unknown>, headers?: Record<string, string>) => h.request('PUT', '/v2/user_auth', { body: { data }, ...(headers ? { headers } : {}) });

describe('envelope and headers', () => {
  test('a success carries exactly the envelope fields, revision = ETag', async () => {
    const response = await h.request('GET', `/v2/accounts/${h.master.id}`, { token: h.master.token });
    const body = ok(response);
    assert.deepEqual(Object.keys(body).sort(), ['auth_token', 'data', 'request_id', 'revision', 'status', 'timestamp']);
    assert.equal(body.auth_token, h.master.token);
    assert.equal(body.revision, response.headers.etag);
    assert.ok(!Number.isNaN(Date.parse(body.timestamp)));
    assert.equal(response.headers['x-request-id'], body.request_id);
  });

  test('X-Request-ID is echoed when sent, generated otherwise', async () => {
    const sent = await h.request('GET', `/v2/accounts/${h.master.id}`, { token: h.master.token, headers: { 'x-request-id': 'my-request-42' } });
    assert.equal(sent.headers['x-request-id'], 'my-request-42');
    assert.equal(sent.json().request_id, 'my-request-42');
    const error = await h.request('GET', '/v2/nowhere', { headers: { 'x-request-id': 'err-7' } });
    assert.equal(error.headers['x-request-id'], 'err-7');
    assert.equal(error.json().request_id, 'err-7');
    const a = await h.request('GET', `/v2/accounts/${h.master.id}`, { token: h.master.token });
    const b = await h.request('GET', `/v2/accounts/${h.master.id}`, { token: h.master.token });
    assert.ok(a.headers['x-request-id']);
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  });

  test('unknown route: 404 bad_identifier in the error shape', async () => {
    assertError(await h.request('GET', '/v2/nowhere/at/all'), 404, 'bad_identifier');
    assertError(await h.request('GET', '/not-even-v2', { token: h.master.token }), 404, 'bad_identifier');
  });

  test('a path that cannot be decoded: 404 bad_identifier in the error shape, with X-Request-ID', async () => {
    assertError(await h.request('GET', '/v2/ips/%E0%A4%A', { token: h.master.token }), 404, 'bad_identifier');
    assertError(await h.request('GET', '/v2/accounts/%zz', { token: h.master.token, headers: { 'x-request-id': 'bad-url-1' } }), 404, 'bad_identifier');
  });

  test('unsupported method on a known path: 405 invalid_method', async () => {
    assertError(await h.request('PATCH', '/v2/ips/hosts', { token: h.master.token, body: { data: {} } }), 405, 'invalid_method', { message: 'method not allowed' });
    assertError(await h.request('PUT', `/v2/accounts/${h.master.id}/children`, { token: h.master.token, body: { data: {} } }), 405, 'invalid_method', { message: 'method not allowed' });
    assertError(await h.request('POST', '/v2/user_auth', { body: { data: {} } }), 405, 'invalid_method');
  });

  test('invalid JSON: 400 validation error with the json.invalid data', async () => {
    const response = await h.request('PUT', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: '{"data": {"name": ', headers: { 'content-type': 'application/json' } });
    assertError(response, 400, 'validation error', { json: { invalid: { message: 'All JSON must be valid', target: 'body' } } });
    const login = await h.request('PUT', '/v2/user_auth', { body: 'not json at all' });
    assertError(login, 400, 'validation error', { json: { invalid: { message: 'All JSON must be valid', target: 'body' } } });
  });

  test('a write whose body lacks data: 400 invalid request envelope', async () => {
    assertError(await h.request('PUT', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: { name: 'x', realm: 'x.test' } }), 400, 'invalid request envelope');
    assertError(await h.request('POST', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: { data: [1, 2] } }), 400, 'invalid request envelope');
    assertError(await h.request('PUT', `/v2/accounts/${h.master.id}`, { token: h.master.token }), 400, 'invalid request envelope');
    assertError(await h.request('PATCH', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: '[]' }), 400, 'invalid request envelope');
  });

  test('a body over the limit: 413 in the error shape', async () => {
    const small = await startHarness({ bodyLimit: '2048' });
    try {
      const big = { data: { name: 'x'.repeat(4000), realm: 'big.test' } };
      const response = await small.request('PUT', `/v2/accounts/${small.master.id}`, { token: small.master.token, body: big, headers: { 'content-type': 'application/json' } });
      assertError(response, 413, 'request entity too large');
      // Just under the limit still works.
      const under = await small.request('PUT', `/v2/accounts/${small.master.id}`, { token: small.master.token, body: { data: { name: 'ok', realm: 'ok.test' } } });
      ok(under, 201);
    } finally {
      await small.close();
    }
  });

  test('an empty body with Content-Type application/json on GET and DELETE is no body', async () => {
    const headers = { 'content-type': 'application/json' };
    ok(await h.request('GET', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: '', headers }));
    const child = await h.account('Empty Body');
    ok(await h.request('DELETE', `/v2/accounts/${child.id}`, { token: h.master.token, body: '', headers }));
    ok(await h.request('GET', `/v2/accounts/${h.master.id}/children`, { token: h.master.token, body: '  ', headers }));
  });

  test('a form-urlencoded content type carrying JSON (curl -d) is parsed as JSON', async () => {
    const response = await h.request('PUT', `/v2/accounts/${h.master.id}`, {
      token: h.master.token,
      body: JSON.stringify({ data: { name: 'Curl Co', realm: 'curl.test' } }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const body = ok(response, 201);
    assert.equal(body.data.realm, 'curl.test');
    const noType = await h.request('PUT', '/v2/user_auth', { body: JSON.stringify({ data: { credentials: credentialsOf('admin', 'secret'), account_realm: 'master.test' } }), headers: { 'content-type': 'text/plain' } });
    ok(noType, 201);
  });

  test('CORS preflight is answered with the allowed and exposed headers', async () => {
    const response = await h.request('OPTIONS', `/v2/accounts/${h.master.id}`, {
      headers: { origin: 'https://monster.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type,x-auth-token' },
    });
    assert.ok(response.statusCode === 204 || response.statusCode === 200, String(response.statusCode));
    assert.equal(response.headers['access-control-allow-origin'], '*');
    const allowed = String(response.headers['access-control-allow-headers']).toLowerCase().split(/\s*,\s*/);
    for (const name of ['content-type', 'x-auth-token', 'x-kazoo-cluster-id', 'if-match', 'x-request-id']) assert.ok(allowed.includes(name), `${name} allowed: ${allowed}`);
    const methods = String(response.headers['access-control-allow-methods']).split(/\s*,\s*/);
    for (const m of ['GET', 'PUT', 'POST', 'PATCH', 'DELETE']) assert.ok(methods.includes(m), `${m} in ${methods}`);
    // Exposed headers come with the actual response.
    const actual = await h.request('GET', `/v2/accounts/${h.master.id}`, { token: h.master.token, headers: { origin: 'https://monster.example' } });
    assert.equal(actual.headers['access-control-allow-origin'], '*');
    const exposed = String(actual.headers['access-control-expose-headers']).toLowerCase().split(/\s*,\s*/);
    for (const name of ['content-type', 'x-auth-token', 'x-request-id', 'location', 'etag']) assert.ok(exposed.includes(name), `${name} exposed: ${exposed}`);
  });

  test('an OPTIONS without preflight headers is not a text/plain error', async () => {
    const response = await h.request('OPTIONS', `/v2/accounts/${h.master.id}`);
    assert.ok(response.statusCode < 400, `${response.statusCode} ${response.body}`);
    assert.equal(response.headers['content-type'], 'application/json');
    assert.ok(response.headers['x-request-id']);
  });

  test('CORS origin is a setting', async () => {
    const other = await startHarness({ corsOrigin: 'https://ui.example' });
    try {
      const response = await other.request('OPTIONS', '/v2/user_auth', { headers: { origin: 'https://ui.example', 'access-control-request-method': 'PUT' } });
      assert.equal(response.headers['access-control-allow-origin'], 'https://ui.example');
    } finally {
      await other.close();
    }
  });

  test('unknown query parameters are ignored', async () => {
    ok(await h.request('GET', `/v2/accounts/${h.master.id}?_=1700000000000&paginate=false`, { token: h.master.token }));
    ok(await h.request('GET', `/v2/accounts/${h.master.id}/children?_=123&paginate=false`, { token: h.master.token }));
  });
});

describe('token transport', () => {
  test('X-Auth-Token, ?auth_token=, body auth_token and Authorization: Bearer all work', async () => {
    const url = `/v2/accounts/${h.master.id}`;
    ok(await h.request('GET', url, { headers: { 'x-auth-token': h.master.token } }));
    ok(await h.request('GET', `${url}?auth_token=${encodeURIComponent(h.master.token)}`));
    ok(await h.request('GET', url, { headers: { authorization: `Bearer ${h.master.token}` } }));
    const read = (await h.request('GET', url, { token: h.master.token })).json().data;
    const patched = await h.request('PATCH', url, { body: { auth_token: h.master.token, data: { note: 'from body token' } } });
    assert.equal(ok(patched).data.note, 'from body token');
    assert.equal(read.name, 'Master');
  });

  test('no token and a bad token: 401 invalid_credentials', async () => {
    const url = `/v2/accounts/${h.master.id}`;
    assertError(await h.request('GET', url), 401, 'invalid_credentials', { message: 'invalid credentials' });
    assertError(await h.request('GET', url, { token: 'not-a-token' }), 401, 'invalid_credentials', { message: 'invalid credentials' });
    assertError(await h.request('GET', url, { headers: { authorization: 'Bearer abc.def.ghi' } }), 401, 'invalid_credentials');
  });
});

describe('logins', () => {
  test('user_auth by account_name (KAZOO matching), account_realm and realm → 201 with a token', async () => {
    const creds = credentialsOf('admin', 'secret');
    for (const data of [{ account_name: 'Master' }, { account_name: 'MASTER' }, { account_name: 'ma-s ter!' }, { account_realm: 'master.test' }, { account_realm: 'MASTER.test' }, { realm: 'master.test' }]) {
      const response = await userAuth({ credentials: creds, ...data });
      const body = ok(response, 201);
      assert.equal(typeof body.auth_token, 'string', JSON.stringify(data));
      assert.equal(body.data.account_id, h.master.id);
      assert.equal(typeof body.data.owner_id, 'string');
      ok(await h.request('GET', `/v2/accounts/${h.master.id}`, { token: body.auth_token }));
    }
  });

  test('a name login succeeds only when the credentials match a user of exactly one account with that name', async () => {
    const one = await h.account('Twin Co');
    const two = await h.account('twin-co');
    await h.request('PUT', `/v2/accounts/${one.id}/users`, { token: one.token, body: { data: { username: 'dup', password: 'one', priv_level: 'admin' } } });
    await h.request('PUT', `/v2/accounts/${two.id}/users`, { token: two.token, body: { data: { username: 'dup', password: 'two', priv_level: 'admin' } } });
    assert.equal(ok(await userAuth({ credentials: credentialsOf('dup', 'one'), account_name: 'TWIN CO' }), 201).data.account_id, one.id);
    assert.equal(ok(await userAuth({ credentials: credentialsOf('dup', 'two'), account_name: 'twinco' }), 201).data.account_id, two.id);
    // The harness's admin/pw exists in both: ambiguous, refused.
    assertError(await userAuth({ credentials: credentialsOf('admin', 'pw'), account_name: 'Twin Co' }), 401, 'invalid_credentials');
    // The realm is unique: no ambiguity there.
    assert.equal(ok(await userAuth({ credentials: credentialsOf('admin', 'pw'), account_realm: two.realm }), 201).data.account_id, two.id);
  });

  test('usernames are lowercased before hashing', async () => {
    const body = ok(await userAuth({ credentials: credentialsOf('ADMIN', 'secret'), account_realm: 'master.test' }), 201);
    assert.equal(body.data.account_id, h.master.id);
  });

  test('a token sent with user_auth is ignored', async () => {
    const response = await h.request('PUT', '/v2/user_auth', { headers: { 'x-auth-token': 'garbage' }, body: { data: { credentials: credentialsOf('admin', 'secret'), account_realm: 'master.test' } } });
    assert.notEqual(ok(response, 201).auth_token, 'garbage');
  });

  test('wrong credentials, unknown account: 401 invalid_credentials', async () => {
    assertError(await userAuth({ credentials: credentialsOf('admin', 'wrong'), account_realm: 'master.test' }), 401, 'invalid_credentials', { message: 'invalid credentials' });
    assertError(await userAuth({ credentials: credentialsOf('admin', 'secret'), account_realm: 'nope.test' }), 401, 'invalid_credentials');
    assertError(await userAuth({ credentials: credentialsOf('admin', 'secret'), account_name: 'Nobody' }), 401, 'invalid_credentials');
  });

  test('a malformed user_auth body: 400 naming the field', async () => {
    const body = assertError(await userAuth({ credentials: 'short', account_realm: 'master.test' }), 400, 'validation error');
    assert.ok(body.data.credentials?.pattern, JSON.stringify(body.data));
  });

  test('api_auth with the key from GET /v2/accounts/{A}/api_key acts as an admin of A', async () => {
    const child = await h.account('Keyed');
    const key = ok(await h.request('GET', `/v2/accounts/${child.id}/api_key`, { token: child.token })).data.api_key;
    assert.match(key, /^[0-9a-f]{64}$/);
    const login = ok(await h.request('PUT', '/v2/api_auth', { body: { data: { api_key: key } } }), 201);
    assert.equal(login.data.account_id, child.id);
    const token = login.auth_token as string;
    ok(await h.request('PATCH', `/v2/accounts/${child.id}`, { token, body: { data: { via: 'api key' } } }));
    assertError(await h.request('GET', `/v2/accounts/${h.master.id}`, { token }), 403, 'forbidden', { message: 'forbidden' });
    assertError(await h.request('PUT', '/v2/api_auth', { body: { data: { api_key: 'f'.repeat(64) } } }), 401, 'invalid_credentials');
  });

  test('GET /v2/token_auth describes the token; DELETE logs out', async () => {
    const token = await h.login('admin', 'secret', 'master.test');
    const about = ok(await h.request('GET', '/v2/token_auth', { token }));
    assert.equal(about.data.account_id, h.master.id);
    assert.equal(about.auth_token, token);
    ok(await h.request('DELETE', '/v2/token_auth', { token }));
    assertError(await h.request('GET', `/v2/accounts/${h.master.id}`, { token }), 401, 'invalid_credentials');
    assertError(await h.request('GET', '/v2/token_auth', { token }), 401, 'invalid_credentials');
  });

  test('the token is JWT-shaped and its payload holds account_id, owner_id, method, exp', async () => {
    const body = ok(await userAuth({ credentials: credentialsOf('admin', 'secret'), account_realm: 'master.test' }), 201);
    const parts = (body.auth_token as string).split('.');
    assert.equal(parts.length, 3);
    for (const part of parts) assert.match(part, /^[A-Za-z0-9_-]+$/);
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    assert.equal(payload.account_id, h.master.id);
    assert.equal(payload.owner_id, body.data.owner_id);
    assert.equal(typeof payload.method, 'string');
    assert.equal(typeof payload.exp, 'number');
    const nowS = Date.now() / 1000;
    assert.ok(payload.exp > nowS + 3000 && payload.exp < nowS + 3700, String(payload.exp));
    // A forged payload with the same shape is not trusted.
    const forged = [parts[0], Buffer.from(JSON.stringify({ ...payload, account_id: 'f'.repeat(32) })).toString('base64url'), parts[2]].join('.');
    assertError(await h.request('GET', '/v2/token_auth', { token: forged }), 401, 'invalid_credentials');
  });

  test('an expired token → 401', async () => {
    const clock = new TestClock('frozen');
    const short = await startHarness({ tokenTtlSeconds: '1' }, { clock: clock.now });
    try {
      ok(await short.request('GET', `/v2/accounts/${short.master.id}`, { token: short.master.token }));
      // Good until the last millisecond of its second (from the token cache by then), then refused.
      clock.advance(999);
      ok(await short.request('GET', `/v2/accounts/${short.master.id}`, { token: short.master.token }));
      clock.advance(1);
      assertError(await short.request('GET', `/v2/accounts/${short.master.id}`, { token: short.master.token }), 401, 'invalid_credentials');
    } finally {
      await short.close();
    }
  });

  test('brute force: after the limit of failures 429 with Retry-After; a success resets the count', async () => {
    const b = await startHarness({ loginMaxFailures: '3' });
    try {
      const attempt = (password: string, data: Record<string, unknown> = { account_realm: 'master.test' }) =>
        b.request('PUT', '/v2/user_auth', { body: { data: { credentials: credentialsOf('admin', password), ...data } } });
      // Two failures, a success, two more failures: still only 401s (the success reset the count).
      assertError(await attempt('bad'), 401, 'invalid_credentials');
      assertError(await attempt('bad'), 401, 'invalid_credentials');
      ok(await attempt('secret'), 201);
      assertError(await attempt('bad'), 401, 'invalid_credentials');
      assertError(await attempt('bad'), 401, 'invalid_credentials');
      assertError(await attempt('bad'), 401, 'invalid_credentials');
      // The limit reached: even the right password gets 429 now.
      const throttled = assertError(await attempt('secret'), 429, 'too many requests');
      assert.ok(throttled);
      const retry = Number((await attempt('bad')).headers['retry-after']);
      assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 900, String(retry));
      // Another account (key) from the same source is not throttled.
      const other = await b.account('Other');
      assert.ok(other.token);
      // api_auth is throttled too, per key.
      for (let i = 0; i < 3; i++) assertError(await b.request('PUT', '/v2/api_auth', { body: { data: { api_key: 'a'.repeat(64) } } }), 401, 'invalid_credentials');
      const api = await b.request('PUT', '/v2/api_auth', { body: { data: { api_key: 'a'.repeat(64) } } });
      assertError(api, 429, 'too many requests');
      assert.ok(Number(api.headers['retry-after']) > 0);
    } finally {
      await b.close();
    }
  });

  test('the default limit is 10 failures', async () => {
    const realm = { account_realm: 'master.test' };
    const b = await startHarness();
    try {
      for (let i = 0; i < 10; i++) assertError(await b.request('PUT', '/v2/user_auth', { body: { data: { credentials: credentialsOf('admin', 'x'), ...realm } } }), 401, 'invalid_credentials');
      const r = await b.request('PUT', '/v2/user_auth', { body: { data: { credentials: credentialsOf('admin', 'secret'), ...realm } } });
      assertError(r, 429, 'too many requests');
      assert.ok(r.headers['retry-after']);
    } finally {
      await b.close();
    }
  });
});

describe('revisions and pagination', () => {
  test('If-Match with a stale revision → 412; the current one succeeds', async () => {
    const child = await h.account('Revised');
    const first = await h.request('GET', `/v2/accounts/${child.id}`, { token: child.token });
    const rev1 = first.headers.etag as string;
    assert.ok(rev1);
    const updated = ok(await h.request('PATCH', `/v2/accounts/${child.id}`, { token: child.token, headers: { 'if-match': rev1 }, body: { data: { note: 'one' } } }));
    assert.notEqual(updated.revision, rev1);
    assertError(await h.request('PATCH', `/v2/accounts/${child.id}`, { token: child.token, headers: { 'if-match': rev1 }, body: { data: { note: 'two' } } }), 412, 'precondition failed');
    assertError(await h.request('POST', `/v2/accounts/${child.id}`, { token: child.token, headers: { 'if-match': `"${rev1}"` }, body: { data: { name: 'x', realm: child.realm } } }), 412, 'precondition failed');
    const now = await h.request('GET', `/v2/accounts/${child.id}`, { token: child.token });
    assert.equal(now.json().data.note, 'one');
    ok(await h.request('PATCH', `/v2/accounts/${child.id}`, { token: child.token, headers: { 'if-match': now.headers.etag as string }, body: { data: { note: 'three' } } }));
  });

  test('page_size, start_key and next_start_key walk a list', async () => {
    const parent = await h.account('Pager');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await h.request('PUT', `/v2/accounts/${parent.id}`, { token: parent.token, body: { data: { name: `Page ${i}`, realm: `page${i}.pager.test` } } });
      ids.push(ok(r, 201).data.id);
    }
    const all = ok(await h.request('GET', `/v2/accounts/${parent.id}/children`, { token: parent.token }));
    assert.equal(all.data.length, 5);
    assert.equal(all.next_start_key, undefined);
    const seen: string[] = [];
    let url = `/v2/accounts/${parent.id}/children?page_size=2`;
    for (let pages = 0; pages < 10; pages++) {
      const body = ok(await h.request('GET', url, { token: parent.token }));
      assert.ok(body.data.length <= 2);
      assert.equal(body.page_size, body.data.length);
      seen.push(...body.data.map((a: { id: string }) => a.id));
      if (body.next_start_key === undefined) break;
      url = `/v2/accounts/${parent.id}/children?page_size=2&start_key=${body.next_start_key}`;
      const next = ok(await h.request('GET', url, { token: parent.token }));
      assert.equal(next.start_key, body.next_start_key);
    }
    assert.deepEqual([...seen].sort(), [...ids].sort());
    assert.deepEqual(seen, all.data.map((a: { id: string }) => a.id));
  });

  test('GET /v2/openapi.json is an OpenAPI 3 document listing the routes', async () => {
    const response = await h.request('GET', '/v2/openapi.json');
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['content-type'], 'application/json');
    const doc = response.json();
    assert.match(String(doc.openapi), /^3\./);
    const paths = Object.keys(doc.paths);
    for (const p of ['/v2/user_auth', '/v2/api_auth', '/v2/token_auth', '/v2/accounts/{account_id}', '/v2/accounts/{account_id}/users', '/v2/accounts/{account_id}/devices/{device_id}', '/v2/ips', '/v2/accounts/{account_id}/ips/{ip}']) {
      assert.ok(paths.includes(p), `${p} in ${paths.join(' ')}`);
    }
    assert.ok(doc.paths['/v2/user_auth'].put);
    assert.ok(doc.paths['/v2/accounts/{account_id}'].patch);
  });
});
