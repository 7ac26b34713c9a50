// Fuzzing the API (issue 8): random bodies for every write endpoint, random path and query
// parameters for every route. The server never answers 5xx, every error is in KAZOO's shape, and
// a rejected request writes nothing (no audit entry, no change-feed row).

import Database from 'better-sqlite3';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ROUTES } from '../../src/api/app.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let db: Database.Database;
let ids: Record<string, string>;
let total = 0;
const statuses = new Map<number, number>();

before(async () => {
  h = await startHarness({ maxCidrs: '50', maxIpAclsPerTrunk: '20' });
  db = new Database(h.config.db, { readonly: true, fileMustExist: true });
  const t = await h.account('Fuzzed');
  const ok = async (method: string, url: string, body?: unknown) => {
    const response = await h.request(method, url, { token: h.master.token, body });
    assert.ok(response.statusCode < 300, response.body);
    return response.json().data;
  };
  const user = await ok('PUT', `/v2/accounts/${t.id}/users`, { data: { username: 'target', password: 'pw', priv_level: 'user' } });
  const device = await ok('PUT', `/v2/accounts/${t.id}/devices`, { data: { name: 'Desk', sip: { username: 'desk' } } });
  const trunk = await ok('PUT', `/v2/accounts/${t.id}/trunks`, { data: { name: 'Main' } });
  const ipAcl = await ok('PUT', `/v2/accounts/${t.id}/trunks/${trunk.id}/ip_acls`, { data: { ip_address: '8.8.8.8' } });
  await ok('PUT', '/v2/ips', { data: { ip: '45.1.1.1', zone: 'z', host: 'h' } });
  ids = { account_id: t.id, user_id: user.id, device_id: device.id, trunk_id: trunk.id, ip_acl_id: ipAcl.id, ip: '45.1.1.1' };
});
after(async () => {
  db.close();
  await h.close();
  console.log(`fuzz: ${total} cases; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
});

/** What a rejected request must leave untouched: the audit trail and the change feed. */
function footprint() {
  const audit = db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number };
  const changes = db.prepare('SELECT COUNT(*) AS n FROM changes').get() as { n: number };
  return `${audit.n}/${changes.n}`;
}

function assertKazooError(label: string, response: { statusCode: number; body: string; headers: Record<string, unknown> }, successType = 'application/json') {
  statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
  assert.ok(response.statusCode < 500, `${label}: ${response.statusCode} ${response.body.slice(0, 300)}`);
  assert.equal(response.headers['content-type'], response.statusCode < 400 ? successType : 'application/json', label);
  if (response.statusCode < 400) return;
  const body = JSON.parse(response.body);
  assert.equal(body.status, 'error', label);
  assert.equal(body.error, String(response.statusCode), label);
  assert.equal(typeof body.message, 'string', label);
  assert.ok(body.data !== null && typeof body.data === 'object', label);
  assert.equal(typeof body.request_id, 'string', label);
}

// --- generators -----------------------------------------------------------------------------

const ipish = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4Extended(),
  fc.tuple(fc.ipV4(), fc.integer({ min: -3, max: 140 })).map(([ip, p]) => `${ip}/${p}`),
  fc.tuple(fc.ipV6(), fc.integer({ min: -3, max: 140 })).map(([ip, p]) => `${ip}/${p}`),
  fc.ipV4().map((ip) => `::ffff:${ip}`),
  fc.ipV6().map((ip) => `${ip}%eth0`),
  fc.array(fc.integer({ min: -1, max: 999 }), { minLength: 1, maxLength: 6 }).map((parts) => parts.join('.')),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('0.0.0.0/0', '::/0', '10.0.0.1/24', '255.255.255.255', '', ' ', '1.2.3.4 ', '٣.٣.٣.٣', '1.2.3.4/32/1'),
);
const regexish = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('(a)\\1', '(?=x)', '(a+)+$', '[', '\\', '(?<n>a)\\k<n>', 'a{1000}{1000}', '.*'));
const junk = fc.jsonValue({ maxDepth: 3 });
const wrongTyped = fc.oneof(junk, fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(junk, { maxLength: 3 }), fc.object({ maxDepth: 2 }));

const KEYS: Record<string, fc.Arbitrary<unknown>> = {
  name: fc.oneof(fc.string({ maxLength: 140 }), wrongTyped),
  realm: fc.oneof(fc.domain(), fc.string({ maxLength: 20 }), wrongTyped),
  username: fc.oneof(fc.string({ maxLength: 20 }), wrongTyped),
  password: fc.oneof(fc.string({ maxLength: 20 }), wrongTyped),
  priv_level: fc.oneof(fc.constantFrom('admin', 'user', 'root', ''), wrongTyped),
  enabled: fc.oneof(fc.boolean(), wrongTyped),
  sip: fc.oneof(fc.record({ username: fc.oneof(fc.string({ maxLength: 20 }), wrongTyped), password: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }), wrongTyped),
  order: fc.oneof(fc.constantFrom('allow,deny', 'deny,allow', 'allow', 'Allow,Deny'), wrongTyped),
  cidrs: fc.oneof(fc.array(ipish, { maxLength: 8 }), fc.array(ipish, { minLength: 45, maxLength: 60 }), fc.array(wrongTyped, { maxLength: 4 }), wrongTyped),
  user_agent: fc.oneof(regexish, wrongTyped),
  ip: fc.oneof(ipish, wrongTyped),
  ips: fc.oneof(fc.array(ipish, { maxLength: 8 }), fc.array(wrongTyped, { maxLength: 3 }), wrongTyped),
  zone: fc.oneof(fc.string({ maxLength: 10 }), wrongTyped),
  host: fc.oneof(fc.string({ maxLength: 10 }), wrongTyped),
  ip_address: fc.oneof(ipish, wrongTyped),
  description: fc.oneof(fc.string({ maxLength: 300 }), wrongTyped),
  credentials: fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), fc.string({ maxLength: 40 }), wrongTyped),
  account_name: fc.oneof(fc.string({ maxLength: 20 }), wrongTyped),
  account_realm: fc.oneof(fc.domain(), wrongTyped),
  api_key: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), wrongTyped),
};
const ANY_KEY = fc.constantFrom(...Object.keys(KEYS), 'id', 'parent_id', 'superduper_admin', 'ui_metadata', '__proto__', 'constructor', 'access_lists');

function dataFor(keys: string[]): fc.Arbitrary<Record<string, unknown>> {
  const record = fc.record(Object.fromEntries(keys.map((k) => [k, KEYS[k]!])), { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
  const accessLists = fc.record({ order: KEYS.order!, cidrs: KEYS.cidrs!, user_agent: KEYS.user_agent! }, { requiredKeys: [] });
  return fc.oneof(
    { weight: 5, arbitrary: record },
    { weight: 1, arbitrary: fc.tuple(record, accessLists).map(([r, a]) => ({ ...r, access_lists: a })) },
    { weight: 1, arbitrary: fc.tuple(record, fc.dictionary(ANY_KEY, wrongTyped, { maxKeys: 4 })).map(([r, extra]) => ({ ...r, ...extra })) },
  );
}

/** A whole request body: mostly `{data: ...}`, sometimes junk, broken JSON or nothing. */
function bodyFor(keys: string[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 8, arbitrary: dataFor(keys).map((data) => ({ data })) },
    { weight: 1, arbitrary: fc.tuple(dataFor(keys), junk).map(([data, extra]) => ({ data, auth_token: typeof extra === 'string' ? extra : undefined, accept_charges: extra })) },
    { weight: 1, arbitrary: junk.map((j) => ({ data: j })) },
    { weight: 1, arbitrary: junk },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((s) => ({ raw: `{"data": ${s}` })) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const KEYS_BY_URL: [RegExp, string[]][] = [
  [/user_auth$/, ['credentials', 'account_name', 'account_realm', 'realm']],
  [/api_auth$/, ['api_key']],
  [/access_lists$/, ['order', 'cidrs', 'user_agent']],
  [/ip_acls(\/:ip_acl_id)?$/, ['ip_address', 'description', 'enabled']],
  [/trunks(\/:trunk_id)?$/, ['name', 'enabled']],
  [/devices(\/:device_id)?$/, ['name', 'sip', 'enabled']],
  [/users(\/:user_id)?$/, ['username', 'password', 'priv_level']],
  [/ips(\/:ip)?$/, ['ip', 'zone', 'host', 'ips']],
  [/accounts\/:account_id$/, ['name', 'realm']],
];
const keysOf = (url: string) => KEYS_BY_URL.find(([re]) => re.test(url))?.[1] ?? Object.keys(KEYS);

function pathOf(url: string): string {
  return url.replace(/:([a-z_]+)/g, (_, name: string) => encodeURIComponent(ids[name]!));
}

async function send(method: string, url: string, body: unknown) {
  const payload = body === undefined ? undefined : typeof body === 'object' && body !== null && 'raw' in body ? (body as { raw: string }).raw : JSON.stringify(body);
  return h.request(method, url, { token: h.master.token, ...(payload === undefined ? {} : { body: payload }) });
}

// Routes whose success would remove the fixtures the other properties need.
const SKIP_BODIES = new Set(['DELETE /v2/accounts/:account_id', 'DELETE /v2/token_auth']);
const WRITES = ROUTES.filter((r) => r.method !== 'GET' && !SKIP_BODIES.has(`${r.method} ${r.url}`) && (r.method !== 'DELETE' || r.url.endsWith('/ips')));

test('random bodies for every write endpoint: never 5xx, KAZOO errors, a rejection writes nothing', { timeout: 60_000 }, async () => {
  for (const route of WRITES) {
    const label = `${route.method} ${route.url}`;
    const url = pathOf(route.url);
    await fc.assert(
      fc.asyncProperty(bodyFor(keysOf(route.url)), async (body) => {
        total++;
        const before = footprint();
        const response = await send(route.method, url, body);
        assertKazooError(label, response);
        if (response.statusCode >= 400) assert.equal(footprint(), before, `${label}: a rejected request (${response.statusCode}) wrote something`);
      }),
      { numRuns: 120, seed: 8, endOnFailure: true },
    );
  }
});

test('huge and hostile bodies', { timeout: 30_000 }, async () => {
  const lists = `/v2/accounts/${ids.account_id}/access_lists`;
  const cases: [string, string, unknown][] = [
    ['POST', lists, { data: { order: 'allow,deny', cidrs: Array.from({ length: 51 }, (_, i) => `8.8.${i}.0/24`) } }],
    ['POST', lists, { data: { order: 'allow,deny', cidrs: Array.from({ length: 60_000 }, () => '1.1.1.1') } }],
    ['POST', lists, { data: { order: 'allow,deny', cidrs: ['1'.repeat(100_000)] } }],
    ['POST', lists, { data: { order: 'allow,deny', cidrs: [], user_agent: 'a'.repeat(5_000) } }],
    ['POST', lists, { data: JSON.parse('{"__proto__": {"order": "allow,deny"}, "cidrs": []}') }],
    ['POST', lists, { data: { order: 'allow,deny', cidrs: JSON.parse(`${'['.repeat(16)}"x"${']'.repeat(16)}`) } }],
    ['POST', lists, `{"data": ${'['.repeat(5_000)}${']'.repeat(5_000)}}`],
    ['POST', lists, `{"data": {"order": "allow,deny", "cidrs": [], "x": "${'y'.repeat(2_000_000)}"}}`],
    ['PUT', `/v2/accounts/${ids.account_id}/trunks/${ids.trunk_id}/ip_acls`, { data: { ip_address: '8.8.4.4'.repeat(1000) } }],
    ['POST', `/v2/accounts/${ids.account_id}/ips`, { data: { ips: Array.from({ length: 10_001 }, () => '45.1.1.1') } }],
    ['PUT', '/v2/user_auth', { data: { credentials: 'a'.repeat(32), account_name: 'x'.repeat(10_000) } }],
  ];
  for (const [method, url, body] of cases) {
    total++;
    const before = footprint();
    const response = await send(method, url, body);
    assertKazooError(`${method} ${url}`, response);
    assert.ok(response.statusCode >= 400, `${method} ${url}: accepted ${response.body.slice(0, 200)}`);
    assert.equal(footprint(), before);
  }
  // The fixture's account list was never set by any of that.
  const read = await h.request('GET', lists, { token: h.master.token });
  assert.equal(read.statusCode, 200);
});

test('random path and query parameters on every route: never 5xx, KAZOO errors', { timeout: 60_000 }, async () => {
  const segment = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.uuid(),
    fc.stringMatching(/^[0-9a-f]{32}$/),
    ipish,
    fc.constantFrom('..', '.', '%', '%00', 'null', 'undefined', '__proto__', 'constructor', ' ', 'ﬀ', '😀', '/'),
  );
  const query = fc.dictionary(
    fc.oneof(fc.constantFrom('ip', 'realm', 'username', 'user_agent', 'device_id', 'trunk_id', 'page_size', 'start_key', 'resource', 'zone', 'host', 'status', 'quantity', '_', 'paginate', 'auth_token'), fc.string({ maxLength: 8 })),
    fc.oneof(fc.string({ maxLength: 40 }), ipish, fc.integer().map(String), fc.constantFrom('-1', '0', '1e309', 'NaN', 'undefined', '9'.repeat(40))),
    { maxKeys: 5 },
  );
  const routes = ROUTES.filter((r) => r.method === 'GET' || r.url.includes(':'));
  for (const route of routes) {
    const label = `${route.method} ${route.url}`;
    const params = [...route.url.matchAll(/:([a-z_]+)/g)].map((m) => m[1]!);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.option(segment, { nil: undefined }), { minLength: params.length, maxLength: params.length }), query, async (values, q) => {
        total++;
        let url = route.url;
        params.forEach((name, i) => {
          const value = values[i] ?? ids[name]!;
          url = url.replace(`:${name}`, encodeURIComponent(value));
        });
        const search = new URLSearchParams(q as Record<string, string>).toString();
        const before = footprint();
        // Writes by random path get an innocuous body; a DELETE of the real fixtures is skipped.
        if (route.method === 'DELETE' && values.every((v) => v === undefined)) return;
        if (route.method === 'DELETE' && route.url === '/v2/accounts/:account_id') return;
        const response = await h.request(route.method, search ? `${url}?${search}` : url, { token: h.master.token });
        assertKazooError(`${label} ${url}?${search}`, response, route.contentType);
        if (response.statusCode >= 400) assert.equal(footprint(), before, `${label}: a rejected request wrote something`);
      }),
      { numRuns: 40, seed: 8, endOnFailure: true },
    );
  }
});
