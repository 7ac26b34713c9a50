// Issue 20, logins: one slow hash per user_auth attempt whatever the number of candidates; an
// atomic throttle per account (all sources) and per (account, source), api_auth per source; and
// the source is the X-Forwarded-For address only when the load balancer is trusted.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, mock, test } from 'node:test';
import { credentialsOf } from '../../src/services/passwords.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { assertError, ok } from '../support/responses.ts';

// Every scrypt the server runs, counted (passwords.ts calls it through the module object).
const scrypt = mock.method(crypto, 'scrypt');
after(() => scrypt.mock.restore());

/** The scrypt calls `fn` causes. */
async function scryptsOf<T>(fn: () => Promise<T>): Promise<{ result: T; scrypts: number }> {
  scrypt.mock.resetCalls();
  const result = await fn();
  return { result, scrypts: scrypt.mock.callCount() };
}

function userAuth(h: Harness, data: Record<string, unknown>, source?: string) {
  return h.app.inject({ method: 'PUT', url: '/v2/user_auth', payload: { data }, ...(source === undefined ? {} : { headers: { 'x-forwarded-for': source } }) });
}

function apiAuth(h: Harness, apiKey: string, source?: string) {
  return h.app.inject({ method: 'PUT', url: '/v2/api_auth', payload: { data: { api_key: apiKey } }, ...(source === undefined ? {} : { headers: { 'x-forwarded-for': source } }) });
}

const statuses = (responses: { statusCode: number }[]) => {
  const count: Record<number, number> = {};
  for (const r of responses) count[r.statusCode] = (count[r.statusCode] ?? 0) + 1;
  return count;
};

describe('one slow hash per user_auth attempt', () => {
  let h: Harness;
  const accounts: { id: string; realm: string; token: string }[] = [];
  before(async () => {
    h = await startHarness();
    // Five accounts named "Crowd", each with the harness's admin/pw and four more users.
    for (let i = 0; i < 5; i++) {
      const a = await h.account('Crowd');
      for (let u = 0; u < 4; u++) {
        ok(await h.request('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, body: { data: { username: `user${u}`, password: `pw-${i}-${u}`, priv_level: 'user' } } }), 201);
      }
      accounts.push(a);
    }
  });
  after(() => h.close());

  test('25 candidate users in 5 accounts of one name: every outcome costs exactly one scrypt', async () => {
    const cases: [string, Record<string, unknown>, number][] = [
      ['the one matching user', { credentials: credentialsOf('user2', 'pw-3-2'), account_name: 'Crowd' }, 201],
      ['wrong credentials', { credentials: credentialsOf('user2', 'nope'), account_name: 'Crowd' }, 401],
      ['credentials valid in all five accounts (ambiguous)', { credentials: credentialsOf('admin', 'pw'), account_name: 'crowd' }, 401],
      ['by realm, one account of five users', { credentials: credentialsOf('user1', 'pw-1-1'), account_realm: accounts[1]!.realm }, 201],
      ['by realm, wrong', { credentials: credentialsOf('user1', 'pw-0-1'), account_realm: accounts[1]!.realm }, 401],
      ['an unknown account', { credentials: credentialsOf('user1', 'pw-1-1'), account_name: 'Nobody Here' }, 401],
    ];
    for (const [what, data, status] of cases) {
      const { result, scrypts } = await scryptsOf(() => userAuth(h, data));
      assert.equal(result.statusCode, status, `${what}: ${result.body}`);
      assert.equal(scrypts, 1, `${what}: ${scrypts} scrypt calls`);
    }
    const login = (await userAuth(h, { credentials: credentialsOf('user2', 'pw-3-2'), account_name: 'Crowd' })).json();
    assert.equal(login.data.account_id, accounts[3]!.id);
  });

  test('a changed password or username is found by its new credentials only, still for one scrypt', async () => {
    const a = accounts[4]!;
    const users = (await h.request('GET', `/v2/accounts/${a.id}/users`, { token: a.token })).json().data as { id: string; username: string }[];
    const user = users.find((u) => u.username === 'user0')!;
    ok(await h.request('PATCH', `/v2/accounts/${a.id}/users/${user.id}`, { token: a.token, body: { data: { username: 'renamed', password: 'fresh' } } }));
    const { result, scrypts } = await scryptsOf(() => userAuth(h, { credentials: credentialsOf('renamed', 'fresh'), account_name: 'Crowd' }));
    assert.equal(result.statusCode, 201, result.body);
    assert.equal(scrypts, 1);
    assertError(await userAuth(h, { credentials: credentialsOf('user0', 'pw-4-0'), account_realm: a.realm }), 401, 'invalid_credentials');
  });
});

describe('the throttle', () => {
  test('40 wrong attempts at once against one account: at most 10 scrypts, then 429s', async () => {
    const h = await startHarness();
    try {
      const wrong = { credentials: credentialsOf('admin', 'guess'), account_realm: 'master.test' };
      const { result, scrypts } = await scryptsOf(() => Promise.all(Array.from({ length: 40 }, () => userAuth(h, wrong))));
      assert.deepEqual(statuses(result), { 401: 10, 429: 30 });
      assert.ok(scrypts <= 10, `${scrypts} scrypt calls`);
      const throttled = result.find((r) => r.statusCode === 429)!;
      assertError(throttled, 429, 'too many requests');
      assert.ok(Number(throttled.headers['retry-after']) > 0);
      // Even the right password waits now.
      assertError(await userAuth(h, { ...wrong, credentials: credentialsOf('admin', 'secret') }), 429, 'too many requests');
    } finally {
      await h.close();
    }
  });

  test('per account across sources: 40 attempts at once from 40 addresses get at most 10 scrypts', async () => {
    const h = await startHarness({ trustProxy: '127.0.0.1' });
    try {
      const wrong = { credentials: credentialsOf('admin', 'guess'), account_name: 'Master' };
      const { result, scrypts } = await scryptsOf(() => Promise.all(Array.from({ length: 40 }, (_, i) => userAuth(h, wrong, `198.51.100.${i + 1}`))));
      assert.deepEqual(statuses(result), { 401: 10, 429: 30 });
      assert.ok(scrypts <= 10, `${scrypts} scrypt calls`);
      // Another name for the same account is the same account.
      assertError(await userAuth(h, { credentials: credentialsOf('admin', 'guess'), account_realm: 'master.test' }, '203.0.113.1'), 429, 'too many requests');
    } finally {
      await h.close();
    }
  });

  test('per (account, source) under a higher account-wide limit: one source is stopped, another is not; a success resets its own source', async () => {
    const h = await startHarness({ trustProxy: '127.0.0.1', loginMaxFailures: '3', loginMaxFailuresPerAccount: '100' });
    try {
      const wrong = { credentials: credentialsOf('admin', 'guess'), account_realm: 'master.test' };
      const right = { ...wrong, credentials: credentialsOf('admin', 'secret') };
      const first = await Promise.all(Array.from({ length: 8 }, () => userAuth(h, wrong, '198.51.100.7')));
      assert.deepEqual(statuses(first), { 401: 3, 429: 5 });
      assertError(await userAuth(h, wrong, '198.51.100.8'), 401, 'invalid_credentials');
      ok(await userAuth(h, right, '198.51.100.8'), 201);
      // The success forgot 198.51.100.8's failure: three more before its 429.
      for (let i = 0; i < 3; i++) assertError(await userAuth(h, wrong, '198.51.100.8'), 401, 'invalid_credentials');
      assertError(await userAuth(h, wrong, '198.51.100.8'), 429, 'too many requests');
    } finally {
      await h.close();
    }
  });

  test('api_auth is limited per source whatever the key guessed; a valid key does not buy more guesses', async () => {
    const h = await startHarness({ trustProxy: '127.0.0.1' });
    try {
      const key = ok(await h.request('GET', `/v2/accounts/${h.master.id}/api_key`, { token: h.master.token })).data.api_key as string;
      const guesses = await Promise.all(Array.from({ length: 30 }, () => apiAuth(h, crypto.randomBytes(32).toString('hex'), '198.51.100.9')));
      assert.deepEqual(statuses(guesses), { 401: 10, 429: 20 });
      assertError(await apiAuth(h, key, '198.51.100.9'), 429, 'too many requests');
      // Another source is not affected, and its successes leave its failures counted.
      for (let i = 0; i < 9; i++) assertError(await apiAuth(h, crypto.randomBytes(32).toString('hex'), '198.51.100.10'), 401, 'invalid_credentials');
      ok(await apiAuth(h, key, '198.51.100.10'), 201);
      assertError(await apiAuth(h, crypto.randomBytes(32).toString('hex'), '198.51.100.10'), 401, 'invalid_credentials');
      assertError(await apiAuth(h, key, '198.51.100.10'), 429, 'too many requests');
    } finally {
      await h.close();
    }
  });
});

describe('--trust-proxy', () => {
  const guesses = (h: Harness, source: string, n: number) => Promise.all(Array.from({ length: n }, () => apiAuth(h, crypto.randomBytes(32).toString('hex'), source)));

  test('a trusted load balancer: X-Forwarded-For is the source', async () => {
    const h = await startHarness({ trustProxy: '127.0.0.0/8,::1' });
    try {
      assert.deepEqual(statuses(await guesses(h, '203.0.113.20', 11)), { 401: 10, 429: 1 });
      assert.deepEqual(statuses(await guesses(h, '203.0.113.21', 1)), { 401: 1 });
      // The client's own X-Forwarded-For, passed on by the balancer, is not believed: the
      // rightmost untrusted address is the source.
      assert.deepEqual(statuses(await guesses(h, '203.0.113.21, 203.0.113.20', 1)), { 429: 1 });
    } finally {
      await h.close();
    }
  });

  test('an untrusted peer: X-Forwarded-For is ignored, the peer is the source', async () => {
    for (const flags of [{}, { trustProxy: '10.0.0.1' }] as Record<string, string>[]) {
      const h = await startHarness(flags);
      try {
        assert.deepEqual(statuses(await guesses(h, '203.0.113.20', 11)), { 401: 10, 429: 1 });
        assert.deepEqual(statuses(await guesses(h, '203.0.113.21', 1)), { 429: 1 }, JSON.stringify(flags));
      } finally {
        await h.close();
      }
    }
  });

  test('the setting takes addresses and CIDRs, and refuses anything else', async () => {
    const { loadConfig } = await import('../../src/config.ts');
    assert.deepEqual(loadConfig({}, { IPWARDEN_TRUST_PROXY: '10.0.0.1, 192.168.0.0/16,::1' }).trustProxy, ['10.0.0.1', '192.168.0.0/16', '::1']);
    assert.deepEqual(loadConfig({ trustProxy: '2001:db8::/32' }, { IPWARDEN_TRUST_PROXY: '10.0.0.1' }).trustProxy, ['2001:db8::/32']);
    assert.equal(loadConfig({}, {}).trustProxy, undefined);
    for (const bad of ['lb.example.com', '10.0.0.1/33', '10.0.0.0/8/1', '10.0.0.1,']) {
      assert.throws(() => loadConfig({ trustProxy: bad }, {}), /trust-proxy/, bad);
    }
  });
});
