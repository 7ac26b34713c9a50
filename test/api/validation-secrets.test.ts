// Issue 20: a 400 names a secret field and its rule, never its value — a password of the wrong
// type, a plaintext password sent as `credentials`, an API key, a device's SIP password (which
// must be a string) — while other fields keep their value in the answer (api.md §1).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startHarness, type Harness } from '../support/harness.ts';
import { assertError } from '../support/responses.ts';

let h: Harness;
let account: { id: string; token: string };
before(async () => {
  h = await startHarness();
  account = await h.account('Echo');
});
after(() => h.close());

/** The 400 for this request, with `field` failing `rule` and no `value` beside it; the secret nowhere in the answer. */
async function refusedWithoutEcho(method: string, url: string, data: unknown, field: string, rule: string, secret: string, token?: string) {
  const response = await h.request(method, url, { ...(token ? { token } : {}), body: { data } });
  const body = assertError(response, 400, 'validation error');
  assert.ok(body.data[field]?.[rule], `${field}.${rule} in ${response.body}`);
  assert.equal('value' in body.data[field][rule], false, response.body);
  assert.equal(response.body.includes(secret), false, `the secret is echoed: ${response.body}`);
}

test('user password of the wrong type or too long: named, not echoed', async () => {
  const url = `/v2/accounts/${account.id}/users`;
  await refusedWithoutEcho('PUT', url, { username: 'u1', password: 31415926535 }, 'password', 'type', '31415926535', account.token);
  await refusedWithoutEcho('PUT', url, { username: 'u1', password: 'Long-Secret-'.repeat(30) }, 'password', 'maxLength', 'Long-Secret-', account.token);
  await refusedWithoutEcho('PUT', url, { username: 'u1', password: '' }, 'password', 'minLength', '"password":""', account.token);
});

test('user_auth with a plaintext password as credentials: named, not echoed', async () => {
  await refusedWithoutEcho('PUT', '/v2/user_auth', { credentials: 'hunter2-plaintext', account_realm: 'master.test' }, 'credentials', 'pattern', 'hunter2-plaintext');
  await refusedWithoutEcho('PUT', '/v2/user_auth', { credentials: 271828182845, account_realm: 'master.test' }, 'credentials', 'type', '271828182845');
});

test('api_auth with a key of the wrong type or length: named, not echoed', async () => {
  await refusedWithoutEcho('PUT', '/v2/api_auth', { api_key: 16180339887 }, 'api_key', 'type', '16180339887');
  await refusedWithoutEcho('PUT', '/v2/api_auth', { api_key: 'k'.repeat(200) }, 'api_key', 'maxLength', 'k'.repeat(200));
});

test("a device's sip.password must be a string, and is never echoed", async () => {
  const url = `/v2/accounts/${account.id}/devices`;
  await refusedWithoutEcho('PUT', url, { name: 'Phone', sip: { username: 'phone', password: 14142135623 } }, 'sip.password', 'type', '14142135623', account.token);
  await refusedWithoutEcho('PUT', url, { name: 'Phone', sip: { username: 'phone', password: true } }, 'sip.password', 'type', '"value":true', account.token);
  const created = await h.request('PUT', url, { token: account.token, body: { data: { name: 'Phone', sip: { username: 'phone', password: 'a-string' } } } });
  assert.equal(created.statusCode, 201, created.body);
});

test('other fields keep their value in the 400', async () => {
  const response = await h.request('PUT', `/v2/accounts/${account.id}/users`, { token: account.token, body: { data: { username: 42, password: 'fine', priv_level: 'root' } } });
  const body = assertError(response, 400, 'validation error');
  assert.equal(body.data.username.type.value, 42);
  assert.equal(body.data.priv_level.enum.value, 'root');
  assert.equal(body.data.password, undefined);
});
