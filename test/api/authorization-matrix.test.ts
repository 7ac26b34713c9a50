// The authorisation matrix (issue 8), generated from the route table: every route in ROUTES ×
// every kind of caller, against a victim tenant's real objects. A route added to ROUTES without an
// entry in EXPECT fails the test.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ROUTES } from '../../src/api/app.ts';
import { credentialsOf } from '../../src/services/passwords.ts';
import { TestClock } from '../support/clock.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let expiredToken: string;
let expiring: Harness;

/** The objects a route's path parameters name. */
interface Victim {
  account: string;
  user: string;
  device: string;
  trunk: string;
  ipAcl: string;
  assignedIp: string;
  freeIp: string;
}

let ipCounter = 0;
let victim: Victim;
let parent: { id: string; token: string; realm: string };
let other: { id: string; token: string; realm: string };
let victimRealm: string;
let userLogin: { username: string; password: string; realm: string };
const tokens: Record<string, string> = {};

async function ok<T = any>(method: string, url: string, body: unknown, token = h.master.token): Promise<T> {
  const response = await h.request(method, url, { token, body });
  assert.ok(response.statusCode < 300, `${method} ${url}: ${response.body}`);
  return response.json().data as T;
}

/** A victim account (child of the parent) with one of everything. No login needed. */
async function makeVictim(): Promise<Victim & { realm: string }> {
  const n = ++ipCounter;
  const realm = `victim${n}.matrix.test`;
  const account = (await ok<{ id: string }>('PUT', `/v2/accounts/${parent.id}`, { data: { name: `Victim ${n}`, realm } })).id;
  const user = (await ok<{ id: string }>('PUT', `/v2/accounts/${account}/users`, { data: { username: `owner${n}`, password: 'pw', priv_level: 'admin' } })).id;
  const device = (await ok<{ id: string }>('PUT', `/v2/accounts/${account}/devices`, { data: { name: 'Desk', sip: { username: `desk${n}`, password: 'sipsecret' } } })).id;
  const trunk = (await ok<{ id: string }>('PUT', `/v2/accounts/${account}/trunks`, { data: { name: 'Main' } })).id;
  const ipAcl = (await ok<{ id: string }>('PUT', `/v2/accounts/${account}/trunks/${trunk}/ip_acls`, { data: { ip_address: `8.${n % 250}.${Math.floor(n / 250)}.1` } })).id;
  const assignedIp = `45.${n % 250}.${Math.floor(n / 250)}.1`;
  const freeIp = `45.${n % 250}.${Math.floor(n / 250)}.2`;
  await ok('PUT', '/v2/ips', { data: { ip: assignedIp, zone: 'z1', host: 'h1' } });
  await ok('PUT', '/v2/ips', { data: { ip: freeIp, zone: 'z1', host: 'h1' } });
  await ok('POST', `/v2/accounts/${account}/ips/${assignedIp}`, undefined);
  return { account, user, device, trunk, ipAcl, assignedIp, freeIp, realm };
}

before(async () => {
  h = await startHarness();
  const expiringClock = new TestClock('running');
  expiring = await startHarness({ tokenTtlSeconds: '1' }, { clock: expiringClock.now });
  parent = await h.account('Parent');
  other = await h.account('Other');
  const v = await makeVictim();
  victim = v;
  victimRealm = v.realm;
  // A `user`-privilege user of the victim, whose login we know (to log in again after logout).
  userLogin = { username: 'reader', password: 'readerpw', realm: victimRealm };
  await ok('PUT', `/v2/accounts/${victim.account}/users`, { data: { username: userLogin.username, password: userLogin.password, priv_level: 'user' } });
  tokens.user = await h.login(userLogin.username, userLogin.password, userLogin.realm);
  tokens.parent = parent.token;
  tokens.other = other.token;
  tokens.superduper = h.master.token;
  tokens.revoked = await h.login(userLogin.username, userLogin.password, userLogin.realm);
  const revoked = await h.request('DELETE', '/v2/token_auth', { token: tokens.revoked });
  assert.equal(revoked.statusCode, 200);
  expiredToken = expiring.master.token;
  expiringClock.advance(1000);
});
after(async () => {
  await h.close();
  await expiring.close();
});

type Outcome = 'ok' | 403 | 404 | 400 | 409;
/** Per route: what the victim's parent, superduper and a `user` of the victim get, and another tenant. */
interface Expectation {
  parent: Outcome;
  superduper: Outcome;
  user: Outcome;
  other: Outcome;
  body?: (v: Victim) => unknown;
  /** Which pool IP `:ip` names. */
  ip?: 'assigned' | 'free';
  /** Runs against a fresh victim for roles that may write (the request changes or removes it). */
  destructive?: boolean;
  query?: (v: Victim) => string;
}

const tenantRead: Expectation = { parent: 'ok', superduper: 'ok', user: 'ok', other: 403 };
const tenantWrite = (body?: (v: Victim) => unknown, extra: Partial<Expectation> = {}): Expectation => ({ parent: 'ok', superduper: 'ok', user: 403, other: 403, destructive: true, ...(body ? { body } : {}), ...extra });
const systemOnly = (extra: Partial<Expectation> = {}): Expectation => ({ parent: 403, superduper: 'ok', user: 403, other: 403, ...extra });
const ownSession: Expectation = { parent: 'ok', superduper: 'ok', user: 'ok', other: 'ok' };

let poolCounter = 0;
const EXPECT: Record<string, Expectation | 'no-token'> = {
  'PUT /v2/user_auth': 'no-token',
  'PUT /v2/api_auth': 'no-token',
  'GET /v2/health': 'no-token',
  'GET /v2/token_auth': ownSession,
  'DELETE /v2/token_auth': ownSession,
  'PUT /v2/accounts/:account_id': tenantWrite(() => ({ data: { name: 'Grandchild', realm: `gc${++poolCounter}.matrix.test` } })),
  'GET /v2/accounts/:account_id': tenantRead,
  'POST /v2/accounts/:account_id': tenantWrite(() => ({ data: { name: 'Renamed', realm: `renamed${++poolCounter}.matrix.test` } })),
  'PATCH /v2/accounts/:account_id': tenantWrite(() => ({ data: { name: 'Patched' } })),
  'DELETE /v2/accounts/:account_id': tenantWrite(),
  'GET /v2/accounts/:account_id/children': tenantRead,
  'GET /v2/accounts/:account_id/descendants': tenantRead,
  'GET /v2/accounts/:account_id/api_key': { ...tenantRead, user: 403 },
  'PUT /v2/accounts/:account_id/api_key': tenantWrite(),
  'PUT /v2/accounts/:account_id/users': tenantWrite(() => ({ data: { username: `new${++poolCounter}`, password: 'pw', priv_level: 'user' } })),
  'GET /v2/accounts/:account_id/users': tenantRead,
  'GET /v2/accounts/:account_id/users/:user_id': tenantRead,
  'POST /v2/accounts/:account_id/users/:user_id': tenantWrite(() => ({ data: { username: 'renamed', password: 'pw2', priv_level: 'admin' } })),
  'PATCH /v2/accounts/:account_id/users/:user_id': tenantWrite(() => ({ data: { password: 'changed' } })),
  'DELETE /v2/accounts/:account_id/users/:user_id': tenantWrite(),
  'PUT /v2/accounts/:account_id/devices': tenantWrite(() => ({ data: { name: 'New', sip: { username: `new${++poolCounter}` } } })),
  'GET /v2/accounts/:account_id/devices': tenantRead,
  'GET /v2/accounts/:account_id/devices/:device_id': tenantRead,
  'POST /v2/accounts/:account_id/devices/:device_id': tenantWrite(() => ({ data: { name: 'Renamed', sip: { username: `renamed${++poolCounter}` } } })),
  'PATCH /v2/accounts/:account_id/devices/:device_id': tenantWrite(() => ({ data: { name: 'Patched' } })),
  'DELETE /v2/accounts/:account_id/devices/:device_id': tenantWrite(),
  'GET /v2/accounts/:account_id/access_lists': tenantRead,
  'POST /v2/accounts/:account_id/access_lists': tenantWrite(() => ({ data: { order: 'allow,deny', cidrs: ['192.0.2.0/24'] } })),
  'DELETE /v2/accounts/:account_id/access_lists': tenantWrite(),
  'GET /v2/accounts/:account_id/devices/:device_id/access_lists': tenantRead,
  'POST /v2/accounts/:account_id/devices/:device_id/access_lists': tenantWrite(() => ({ data: { order: 'deny,allow', cidrs: [] } })),
  'DELETE /v2/accounts/:account_id/devices/:device_id/access_lists': tenantWrite(),
  'GET /v2/accounts/:account_id/access_lists/check': { ...tenantRead, query: (v) => `ip=192.0.2.1&device_id=${v.device}` },
  'GET /v2/access_lists/decide': systemOnly({ query: () => `ip=192.0.2.1&realm=${victimRealm}&username=desk1` }),
  'PUT /v2/ips': systemOnly({ body: () => ({ data: { ip: `46.0.${++poolCounter}.9`, zone: 'z', host: 'h' } }), destructive: true }),
  'GET /v2/ips': systemOnly(),
  'GET /v2/ips/hosts': systemOnly(),
  'GET /v2/ips/zones': systemOnly(),
  'GET /v2/ips/:ip': systemOnly({ ip: 'assigned' }),
  'POST /v2/ips/:ip': systemOnly({ ip: 'assigned', body: () => ({ data: { zone: 'z2' } }), destructive: true }),
  'DELETE /v2/ips/:ip': systemOnly({ ip: 'free', destructive: true }),
  'PUT /v2/accounts/:account_id/ips': systemOnly({ body: () => ({ data: { ip: `47.0.${++poolCounter}.9`, zone: 'z', host: 'h' } }), destructive: true }),
  'GET /v2/accounts/:account_id/ips': tenantRead,
  'POST /v2/accounts/:account_id/ips': tenantWrite((v) => ({ data: { ips: [v.freeIp] } })),
  'DELETE /v2/accounts/:account_id/ips': tenantWrite((v) => ({ data: { ips: [v.assignedIp] } })),
  'GET /v2/accounts/:account_id/ips/assigned': tenantRead,
  'GET /v2/accounts/:account_id/ips/hosts': tenantRead,
  'GET /v2/accounts/:account_id/ips/zones': tenantRead,
  'GET /v2/accounts/:account_id/ips/:ip': { ...tenantRead, ip: 'assigned' },
  'POST /v2/accounts/:account_id/ips/:ip': tenantWrite(undefined, { ip: 'free' }),
  'DELETE /v2/accounts/:account_id/ips/:ip': tenantWrite(undefined, { ip: 'assigned' }),
  'PUT /v2/accounts/:account_id/trunks': tenantWrite(() => ({ data: { name: 'Second' } })),
  'GET /v2/accounts/:account_id/trunks': tenantRead,
  'GET /v2/accounts/:account_id/trunks/:trunk_id': tenantRead,
  'POST /v2/accounts/:account_id/trunks/:trunk_id': tenantWrite(() => ({ data: { name: 'Renamed', enabled: true } })),
  'PATCH /v2/accounts/:account_id/trunks/:trunk_id': tenantWrite(() => ({ data: { name: 'Patched' } })),
  'DELETE /v2/accounts/:account_id/trunks/:trunk_id': tenantWrite(),
  'PUT /v2/accounts/:account_id/trunks/:trunk_id/ip_acls': tenantWrite(() => ({ data: { ip_address: `8.251.${++poolCounter}.1` } })),
  'GET /v2/accounts/:account_id/trunks/:trunk_id/ip_acls': tenantRead,
  'GET /v2/accounts/:account_id/trunks/:trunk_id/ip_acls/:ip_acl_id': tenantRead,
  'POST /v2/accounts/:account_id/trunks/:trunk_id/ip_acls/:ip_acl_id': tenantWrite(() => ({ data: { ip_address: `8.252.${++poolCounter}.1`, description: 'moved' } })),
  'PATCH /v2/accounts/:account_id/trunks/:trunk_id/ip_acls/:ip_acl_id': tenantWrite(() => ({ data: { description: 'patched' } })),
  'DELETE /v2/accounts/:account_id/trunks/:trunk_id/ip_acls/:ip_acl_id': tenantWrite(),
  'GET /v2/accounts/:account_id/ip_acls': { ...tenantRead, query: (v) => `trunk_id=${v.trunk}` },
  'GET /v2/ip_acls/lookup': systemOnly({ query: () => 'ip=8.1.0.1' }),
  'GET /v2/accounts/:account_id/audit': tenantRead,
  'GET /v2/exports/kamailio/address': systemOnly(),
  'GET /v2/stats': systemOnly(),
};

function urlOf(url: string, v: Victim, e: Expectation): string {
  const path = url
    .replace(':account_id', v.account)
    .replace(':user_id', v.user)
    .replace(':device_id', v.device)
    .replace(':trunk_id', v.trunk)
    .replace(':ip_acl_id', v.ipAcl)
    .replace(':ip', e.ip === 'free' ? v.freeIp : v.assignedIp);
  assert.ok(!path.includes('/:'), `unsubstituted parameter in ${path}`);
  return e.query ? `${path}?${e.query(v)}` : path;
}

const idsOf = (v: Victim) => [v.account, v.user, v.device, v.trunk, v.ipAcl];

function assertErrorShape(body: any, status: number) {
  assert.equal(body.status, 'error');
  assert.equal(body.error, String(status));
  assert.equal(typeof body.message, 'string');
  assert.equal(typeof body.request_id, 'string');
  assert.equal(typeof body.data, 'object');
}

test('every route in ROUTES has an expectation, and every expectation a route', () => {
  const keys = ROUTES.map((r) => `${r.method} ${r.url}`);
  const missing = keys.filter((k) => !(k in EXPECT));
  assert.deepEqual(missing, [], 'routes without an expectation');
  const stale = Object.keys(EXPECT).filter((k) => !keys.includes(k));
  assert.deepEqual(stale, [], 'expectations without a route');
  for (const r of ROUTES) assert.equal(EXPECT[`${r.method} ${r.url}`] === 'no-token', r.auth === 'none' || r.auth === 'optional', `${r.method} ${r.url}: auth`);
});

test('route × caller matrix', { timeout: 60_000 }, async () => {
  // Data changes only: the allowed API key reads, logins and logouts are recorded too.
  const changes = async () => (await h.request('GET', `/v2/accounts/${victim.account}/audit?page_size=1000`, { token: h.master.token })).json().data.filter((e: { action: string }) => ['create', 'update', 'delete'].includes(e.action)).length;
  const auditBefore = await changes();
  let cases = 0;
  const failures: string[] = [];
  const expectStatus = (key: string, role: string, actual: number, body: string, want: Outcome | 401) => {
    cases++;
    const good = want === 'ok' ? actual >= 200 && actual < 300 : actual === want;
    if (!good) failures.push(`${key} as ${role}: ${actual} (wanted ${want}) ${body.slice(0, 200)}`);
  };

  for (const route of ROUTES) {
    const key = `${route.method} ${route.url}`;
    const e = EXPECT[key]!;
    if (e === 'no-token') continue;
    const body = e.body?.(victim);
    const url = urlOf(route.url, victim, e);

    // The token failures: all 401 in KAZOO's shape, whatever the route.
    const failuresByRole: Record<string, Record<string, string>> = {
      'no token': {},
      'malformed token': { 'x-auth-token': 'not-a-token' },
      'forged JWT-shaped token': { 'x-auth-token': `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ account_id: victim.account, owner_id: victim.user, method: 'cb_user_auth', exp: 4e9 })).toString('base64url')}.AAAA` },
      'expired token': { 'x-auth-token': expiredToken },
      'revoked token': { 'x-auth-token': tokens.revoked! },
    };
    for (const [role, headers] of Object.entries(failuresByRole)) {
      const response = await h.request(route.method, url, { headers, body });
      expectStatus(key, role, response.statusCode, response.body, 401);
      assertErrorShape(response.json(), response.statusCode);
      if (response.statusCode === 401) assert.deepEqual(response.json().data, { message: 'invalid credentials' });
    }

    for (const role of ['other', 'user', 'parent', 'superduper'] as const) {
      const want = e[role];
      // A role that may write acts on a fresh victim, so the shared one stays intact.
      const mayChange = e.destructive && want === 'ok';
      const target = mayChange ? await makeVictim() : victim;
      const roleUrl = mayChange ? urlOf(route.url, target, e) : url;
      const roleBody = mayChange ? e.body?.(target) : body;
      let token = tokens[role]!;
      if (key === 'DELETE /v2/token_auth') {
        // Log out a second session of the same caller, leaving the matrix's token alive.
        token =
          role === 'superduper' ? await h.login('admin', 'secret', 'master.test')
          : role === 'user' ? await h.login(userLogin.username, userLogin.password, userLogin.realm)
          : await h.login('admin', 'pw', role === 'parent' ? parent.realm : other.realm);
      }
      const response = await h.request(route.method, roleUrl, { token, body: roleBody });
      expectStatus(key, role, response.statusCode, response.body, want);
      if (response.statusCode >= 400) assertErrorShape(response.json(), response.statusCode);
      if (role === 'other' || (role === 'user' && want !== 'ok')) {
        for (const id of idsOf(victim)) if (response.body.includes(id)) failures.push(`${key} as ${role}: the response names ${id}`);
      }
      if (role === 'superduper' && (response.statusCode === 401 || response.statusCode === 403)) failures.push(`${key}: superduper got ${response.statusCode}`);
      if (role === 'user' && route.method !== 'GET' && key !== 'DELETE /v2/token_auth' && response.statusCode < 400) failures.push(`${key}: a user wrote`);
    }
  }

  // The 'no-token' routes work without a token.
  assert.equal((await h.request('GET', '/v2/health')).statusCode, 200);
  const login = await h.request('PUT', '/v2/user_auth', { body: { data: { credentials: credentialsOf(userLogin.username, userLogin.password), account_realm: userLogin.realm } } });
  assert.equal(login.statusCode, 201);

  console.log(`authorization matrix: ${cases} route × caller cases over ${ROUTES.length} routes`);
  assert.deepEqual(failures, []);
  // Nothing a refused caller asked for changed the shared victim.
  const auditAfter = await changes();
  assert.equal(auditAfter, auditBefore, 'refused requests left no trace in the audit trail');
  for (const [url, id] of [
    [`/v2/accounts/${victim.account}/devices/${victim.device}`, victim.device],
    [`/v2/accounts/${victim.account}/users/${victim.user}`, victim.user],
    [`/v2/accounts/${victim.account}/trunks/${victim.trunk}/ip_acls/${victim.ipAcl}`, victim.ipAcl],
  ] as const) {
    const read = await h.request('GET', url, { token: h.master.token });
    assert.equal(read.json().data.id, id);
  }
});
