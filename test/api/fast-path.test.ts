// The decision fast path (src/api/fast-path.ts) against the routes it stands in for: the same
// request, sent over a real socket (where the fast path runs) and through app.inject (which always
// goes through Fastify), must get the same status, headers, body, log line and metrics — and the
// common case must really be answered by the fast path (no token verification through Fastify).

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/api/app.ts';
import { createLogger } from '../../src/main.ts';
import { TestClock } from '../support/clock.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let app: FastifyInstance;
let base = '';
let registry: Registry;
let logger: ReturnType<typeof createLogger>;
const lines: Record<string, unknown>[] = [];
/** Token verifications through Fastify's routes: the fast path never makes one. */
let verified = 0;
let tenant: { id: string; token: string; realm: string };
let other: { id: string; token: string; realm: string };
let deviceId = '';

before(async () => {
  // The authenticator's clock stands still: a token verified once stays in the token cache for
  // the whole file, however slowly the machine runs it.
  h = await startHarness({}, { clock: new TestClock('frozen').now });
  registry = new Registry();
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  // A second app over the same services, logging at info level into `lines`.
  app = await buildApp(h.services, { corsOrigin: 'https://ui.example,https://other.example', bodyLimit: h.config.bodyLimit, registry, logger: (logger = createLogger('info', sink)) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const verify = h.services.auth.verify.bind(h.services.auth);
  h.services.auth.verify = (token) => {
    verified++;
    return verify(token);
  };

  tenant = await h.account('Fast');
  other = await h.account('Other');
  const created = await h.request('PUT', `/v2/accounts/${tenant.id}/devices`, { token: tenant.token, body: { data: { name: 'Phone', sip: { username: 'phone1' } } } });
  assert.equal(created.statusCode, 201, created.body);
  deviceId = created.json().data.id;
  for (const [url, data] of [
    [`/v2/accounts/${tenant.id}/access_lists`, { order: 'allow,deny', cidrs: ['192.0.2.0/24', '2001:db8::/32'], user_agent: '^Yealink' }],
    [`/v2/accounts/${tenant.id}/devices/${deviceId}/access_lists`, { order: 'deny,allow', cidrs: ['192.0.2.66/32'] }],
  ] as const) {
    const set = await h.request('POST', url, { token: tenant.token, body: { data } });
    assert.equal(set.statusCode, 200, set.body);
  }
});

after(async () => {
  await app.close();
  await h.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** The headers both paths must agree on (Date, Connection and Keep-Alive are Node's own). */
const HEADERS = ['content-type', 'content-length', 'access-control-allow-origin', 'access-control-expose-headers', 'vary', 'retry-after', 'etag'];

function comparable(status: number, headers: Record<string, string | string[] | undefined>, text: string): Answer {
  const body = JSON.parse(text) as Record<string, unknown>;
  const picked: Record<string, string> = {};
  for (const name of HEADERS) if (headers[name] !== undefined) picked[name] = String(headers[name]);
  // Both are the request's own: present on both paths, equal to each other, different per request.
  assert.equal(headers['x-request-id'], body.request_id);
  assert.match(String(body.timestamp), /^\d{4}-\d\d-\d\dT/);
  delete body.request_id;
  delete body.timestamp;
  // The request id's length is fixed, so the content length is comparable.
  return { status, headers: picked, body };
}

/** The request over the socket, reporting whether Fastify verified its token. */
/** A GET over a real socket, the path sent exactly as given (fetch would normalise it). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${url}`, { headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function overSocket(url: string, headers: Record<string, string>): Promise<Answer & { viaFastify: boolean }> {
  const before = verified;
  const response = await get(url, headers);
  return { ...comparable(response.status, response.headers, response.body), viaFastify: verified > before };
}

async function throughFastify(url: string, headers: Record<string, string>): Promise<Answer> {
  const response = await app.inject({ method: 'GET', url, headers });
  return comparable(response.statusCode, response.headers as Record<string, string>, response.body);
}

/** A new token of an account's admin (`h.account` gives each admin the password 'pw'). */
function freshToken(realm: string, password = 'pw'): Promise<string> {
  return h.login('admin', password, realm);
}

/** Asserts both paths agree; returns whether the socket request went through Fastify. */
async function same(url: string, headers: Record<string, string> = {}): Promise<{ viaFastify: boolean; answer: Answer }> {
  const fast = await overSocket(url, headers);
  const slow = await throughFastify(url, headers);
  const { viaFastify, ...answer } = fast;
  assert.deepEqual(answer, slow, url);
  return { viaFastify, answer };
}

const checkUrl = (params: Record<string, string>, account = tenant.id) => `/v2/accounts/${account}/access_lists/check?${new URLSearchParams(params)}`;

describe('the decision fast path', () => {
  test('answers the common checks itself, exactly as the route does', async () => {
    const token = await freshToken(tenant.realm);
    const auth = { 'x-auth-token': token };
    await same(checkUrl({ ip: '192.0.2.1' }), auth); // the first use of a token goes through Fastify and caches it
    const cases: [Record<string, string>, string][] = [
      [{ ip: '192.0.2.1', user_agent: 'Yealink T46' }, 'allow'],
      [{ ip: '192.0.2.1', user_agent: 'friendly-scanner' }, 'deny'],
      [{ ip: '198.51.100.7', user_agent: 'Yealink T46' }, 'deny'],
      [{ ip: '2001:db8::1', user_agent: 'Yealink' }, 'allow'],
      [{ ip: '192.0.2.66', user_agent: 'Yealink', device_id: deviceId }, 'deny'],
      [{ ip: '192.0.2.5', user_agent: 'Yealink', device_id: deviceId, _: '1700000000000' }, 'allow'],
    ];
    for (const [params, decision] of cases) {
      const { viaFastify, answer } = await same(checkUrl(params), auth);
      assert.equal(viaFastify, false, `${JSON.stringify(params)} was answered by Fastify`);
      assert.equal(answer.status, 200);
      assert.equal((answer.body.data as { decision: string }).decision, decision, JSON.stringify(answer.body));
      assert.equal(answer.body.auth_token, token);
    }
  });

  test('a token in the query or as a Bearer, an allowed Origin, a given X-Request-ID', async () => {
    const token = await freshToken(tenant.realm);
    await same(checkUrl({ ip: '192.0.2.1' }), { 'x-auth-token': token });
    assert.equal((await same(checkUrl({ ip: '192.0.2.1', auth_token: token }))).viaFastify, false);
    assert.equal((await same(checkUrl({ ip: '192.0.2.1' }), { authorization: `Bearer ${token}` })).viaFastify, false);
    // The PHP and Python SDKs send a JSON content type and an empty body with every GET.
    const before = verified;
    const sdk = await get(checkUrl({ ip: '192.0.2.1' }), { 'x-auth-token': token, 'content-type': 'application/json', 'content-length': '0' });
    assert.equal(sdk.status, 200, sdk.body);
    assert.equal(verified, before, 'an empty body left the request to Fastify');
    const cors = await same(checkUrl({ ip: '192.0.2.1' }), { 'x-auth-token': token, origin: 'https://other.example' });
    assert.equal(cors.viaFastify, false);
    assert.equal(cors.answer.headers['access-control-allow-origin'], 'https://other.example');
    assert.equal((await same(checkUrl({ ip: '192.0.2.1' }), { 'x-auth-token': token, origin: 'https://evil.example' })).answer.headers['access-control-allow-origin'], undefined);
    const response = await fetch(`${base}${checkUrl({ ip: '192.0.2.1' })}`, { headers: { 'x-auth-token': token, 'x-request-id': 'sbc-42' } });
    assert.equal(response.headers.get('x-request-id'), 'sbc-42');
    assert.equal(((await response.json()) as { request_id: string }).request_id, 'sbc-42');
  });

  test('a source that is no address: the same 400, answered by the fast path', async () => {
    const token = await freshToken(tenant.realm);
    await same(checkUrl({ ip: '192.0.2.1' }), { 'x-auth-token': token });
    const { viaFastify, answer } = await same(checkUrl({ ip: '300.1.2.3' }), { 'x-auth-token': token });
    assert.equal(viaFastify, false);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.message, 'validation error');
    assert.deepEqual(Object.keys(answer.body.data as object), ['ip']);
  });

  test('everything else is left to Fastify, with the same answers', async () => {
    const auth = { 'x-auth-token': tenant.token };
    await same(checkUrl({ ip: '192.0.2.1' }), auth);
    const left: [string, Record<string, string>, number][] = [
      [checkUrl({ ip: '192.0.2.1' }), {}, 401],
      [checkUrl({ ip: '192.0.2.1' }), { 'x-auth-token': 'not-a-token' }, 401],
      [checkUrl({ ip: '192.0.2.1' }, other.id), auth, 403],
      [checkUrl({ ip: '192.0.2.1' }, 'f'.repeat(32)), auth, 404],
      [checkUrl({ ip: '192.0.2.1', device_id: 'e'.repeat(32) }), auth, 404],
      [checkUrl({ user_agent: 'x' }), auth, 400],
      [`/v2/accounts/${tenant.id}/access_lists/check`, auth, 400],
      [`${checkUrl({ ip: '192.0.2.1' })}&ip=192.0.2.2`, auth, 400],
    ];
    for (const [url, headers, status] of left) {
      const { answer } = await same(url, headers);
      assert.equal(answer.status, status, `${url}: ${JSON.stringify(answer.body)}`);
    }
    // A repeated parameter is ambiguous: refused, naming it.
    const repeated = await same(`${checkUrl({ ip: '192.0.2.1' })}&ip=192.0.2.2&_=1`, auth);
    assert.deepEqual(repeated.answer.body.data, { ip: { type: { message: 'Value must be given once', target: 'query' } } });
    // A trailing slash is Fastify's to route, and it finds the same endpoint.
    const slash = await overSocket(checkUrl({ ip: '192.0.2.1' }).replace('?', '/?'), auth);
    assert.equal(slash.status, 200);
    assert.equal(slash.viaFastify, true);
  });

  test('decide by realm (superduper): answered by the fast path like the route; others left to it', async () => {
    const auth = { 'x-auth-token': await freshToken('master.test', 'secret') };
    const url = (params: Record<string, string>) => `/v2/access_lists/decide?${new URLSearchParams(params)}`;
    await same(url({ ip: '192.0.2.1', realm: tenant.realm }), auth);
    const cases: Record<string, string>[] = [
      { ip: '192.0.2.1', realm: tenant.realm, user_agent: 'Yealink' },
      { ip: '192.0.2.66', realm: tenant.realm, username: 'phone1', user_agent: 'Yealink' },
      { ip: '192.0.2.1', realm: 'nowhere.invalid', username: 'x' },
      { ip: 'nonsense', realm: tenant.realm },
    ];
    for (const params of cases) {
      const { viaFastify, answer } = await same(url(params), auth);
      assert.equal(viaFastify, false, JSON.stringify(params));
      assert.equal(answer.status, 200);
    }
    await same(url({ ip: '192.0.2.1', realm: tenant.realm }), { 'x-auth-token': tenant.token });
    const forbidden = await same(url({ ip: '192.0.2.1', realm: tenant.realm }), { 'x-auth-token': tenant.token });
    assert.equal(forbidden.answer.status, 403);
    assert.equal((await same(url({ ip: '192.0.2.1' }), auth)).answer.status, 400);
  });

  test("an account's list: read by the fast path like the route; a device's list and others' left to Fastify", async () => {
    const auth = { 'x-auth-token': await freshToken(tenant.realm) };
    const url = `/v2/accounts/${tenant.id}/access_lists`;
    await same(url, auth);
    for (const variant of [url, `${url}?_=1700000000000&paginate=false`]) {
      const { viaFastify, answer } = await same(variant, auth);
      assert.equal(viaFastify, false, variant);
      assert.deepEqual(answer.body.data, { order: 'allow,deny', cidrs: ['192.0.2.0/24', '2001:db8::/32'], user_agent: '^Yealink' });
    }
    const none = await h.account('No List');
    await same(`/v2/accounts/${none.id}/access_lists`, { 'x-auth-token': none.token });
    const empty = await same(`/v2/accounts/${none.id}/access_lists`, { 'x-auth-token': none.token });
    assert.equal(empty.viaFastify, false);
    assert.deepEqual(empty.answer.body.data, {});
    const device = await same(`/v2/accounts/${tenant.id}/devices/${deviceId}/access_lists`, auth);
    assert.equal(device.viaFastify, true);
    assert.deepEqual(device.answer.body.data, { order: 'deny,allow', cidrs: ['192.0.2.66/32'] });
    assert.equal((await same(`/v2/accounts/${other.id}/access_lists`, auth)).answer.status, 403);
  });

  test('the account hierarchy holds on the fast path: a parent reads a child, a user reads, a child never its parent', async () => {
    const child = await h.account('Child', { parentId: tenant.id, token: tenant.token });
    const reader = await h.user(tenant.id, tenant.realm, 'user', tenant.token);
    const cases = [
      { what: 'the parent on its child', url: checkUrl({ ip: '192.0.2.1' }, child.id), token: await freshToken(tenant.realm), status: 200 },
      { what: 'a user on its account', url: checkUrl({ ip: '192.0.2.1' }), token: reader.token, status: 200 },
      { what: 'the superduper admin anywhere', url: checkUrl({ ip: '192.0.2.1' }, child.id), token: await freshToken('master.test', 'secret'), status: 200 },
      { what: 'the child on its parent', url: checkUrl({ ip: '192.0.2.1' }), token: child.token, status: 403 },
      { what: 'the child on its parent’s list', url: `/v2/accounts/${tenant.id}/access_lists`, token: child.token, status: 403 },
    ];
    for (const { what, url, token, status } of cases) {
      const auth = { 'x-auth-token': token };
      await same(url, auth); // caches the token
      const { viaFastify, answer } = await same(url, auth);
      assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
      assert.equal(viaFastify, status !== 200, `${what}: answered by ${viaFastify ? 'Fastify' : 'the fast path'}`);
    }
  });

  test('random queries, repeated and escaped parameters included: both paths answer alike', async () => {
    const auth = { 'x-auth-token': tenant.token };
    await same(checkUrl({ ip: '192.0.2.1' }), auth);
    const value = fc.oneof(
      fc.constantFrom('192.0.2.1', '192.0.2.66', '2001:db8::1', '::ffff:192.0.2.1', '300.1.1.1', '', 'nonsense', 'Yealink T46', deviceId, 'e'.repeat(32), tenant.realm),
      fc.string({ maxLength: 12 }),
    );
    const pair = fc.tuple(fc.constantFrom('ip', 'user_agent', 'device_id', 'realm', 'username', '_', 'paginate'), value);
    const raw = fc.constantFrom('', '&', '&ip', '&=x', '&%zz=1', '&user_agent=%E2%82%AC', '&ip=%31%39%32.0.2.1', '&ip=192.0.2.1+');
    await fc.assert(
      fc.asyncProperty(fc.array(pair, { maxLength: 5 }), raw, fc.boolean(), async (pairs, tail, decide) => {
        const path = decide ? '/v2/access_lists/decide' : `/v2/accounts/${tenant.id}/access_lists/check`;
        const url = `${path}?${new URLSearchParams(pairs)}${tail}`;
        await same(url, decide ? { 'x-auth-token': h.master.token } : auth);
      }),
      { numRuns: 150 },
    );
  });

  test('a revoked token stops working on the fast path at once', async () => {
    const t = await h.account('Revoked');
    const auth = { 'x-auth-token': t.token };
    assert.equal((await same(checkUrl({ ip: '192.0.2.1' }, t.id), auth)).answer.status, 200);
    assert.equal((await same(checkUrl({ ip: '192.0.2.1' }, t.id), auth)).viaFastify, false);
    const revoked = await fetch(`${base}/v2/token_auth`, { method: 'DELETE', headers: auth });
    assert.equal(revoked.status, 200);
    assert.equal((await overSocket(checkUrl({ ip: '192.0.2.1' }, t.id), auth)).status, 401);
  });

  test('one log line and one count per request, as the routes write them', async () => {
    const token = await freshToken(tenant.realm);
    const auth = { 'x-auth-token': token };
    await same(checkUrl({ ip: '192.0.2.1' }), auth);
    const counted = async () => {
      const text = await registry.metrics();
      const line = text.split('\n').find((l) => l.startsWith('ipwarden_http_requests_total{') && l.includes('route="/v2/accounts/:account_id/access_lists/check"') && l.includes('status="200"'));
      return Number(line?.split(' ').pop() ?? 0);
    };
    const before = await counted();
    const url = checkUrl({ ip: '192.0.2.1', auth_token: token });
    const fast = await overSocket(url, {});
    assert.equal(fast.viaFastify, false);
    await throughFastify(url, {});
    assert.equal(await counted(), before + 2);
    logger.flush();
    await new Promise((resolve) => setImmediate(resolve));
    const [fastLine, slowLine] = lines.filter((l) => l.msg === 'request').slice(-2) as Record<string, unknown>[];
    for (const line of [fastLine!, slowLine!]) {
      assert.equal(line.level, 30);
      assert.equal(line.status, 200);
      assert.equal(line.method, 'GET');
      assert.equal(typeof line.ms, 'number');
      assert.equal(typeof line.reqId, 'string');
      // The query's token is not logged.
      assert.ok(!String(line.url).includes(token), String(line.url));
      assert.ok(String(line.url).includes('auth_token=[redacted]'), String(line.url));
    }
    assert.deepEqual(Object.keys(fastLine!).sort(), Object.keys(slowLine!).sort());
    assert.equal(fastLine!.url, slowLine!.url);
  });
});
