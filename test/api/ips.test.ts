// Issue 3, api.md §3, seed 000: the dedicated IP pool (superduper) and each account's IPs, every
// endpoint of §3's table with the seed's bodies, the per-IP errors, and accounts racing for one IP.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError, ok } from '../support/responses.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(() => h.close());

type Tenant = { id: string; token: string; realm: string };

/** The seed's "clean ip". */
function clean(ip: string, zone: string, host: string, assignedTo?: string) {
  return { id: ip, ip, zone, host, status: assignedTo === undefined ? 'available' : 'assigned', type: 'dedicated_ip', ...(assignedTo === undefined ? {} : { assigned_to: assignedTo }) };
}

const HOST = 'proxy1.us-east.myswitch.com';
const add = (ip: string, zone = 'us-east', host = HOST, harness = h) => harness.request('PUT', '/v2/ips', { token: harness.master.token, body: { data: { ip, zone, host } } });

describe('the pool (superduper)', () => {
  test('PUT /v2/ips with the seed body → 201 clean ip', async () => {
    const response = await h.request('PUT', '/v2/ips', { token: h.master.token, body: '{"data":{"ip":"1.2.3.4", "zone":"us-east", "host":"proxy1.us-east.myswitch.com"}}', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const body = ok(response, 201);
    assert.deepEqual(body.data, clean('1.2.3.4', 'us-east', HOST));
    assert.equal(typeof body.revision, 'string');
  });

  test("PUT /v2/accounts/{A}/ips (the seed's own example path) does the same", async () => {
    const body = ok(await h.request('PUT', `/v2/accounts/${h.master.id}/ips`, { token: h.master.token, body: { data: { ip: '5.6.7.8', zone: 'us-east', host: HOST } } }), 201);
    assert.deepEqual(body.data, clean('5.6.7.8', 'us-east', HOST));
    // …and the account in that path must exist.
    const unknown = 'f'.repeat(32);
    assertError(await h.request('PUT', `/v2/accounts/${unknown}/ips`, { token: h.master.token, body: { data: { ip: '5.6.7.9', zone: 'us-east', host: HOST } } }), 404, 'bad_identifier');
    assertError(await h.request('GET', '/v2/ips/5.6.7.9', { token: h.master.token }), 404, 'bad_identifier');
  });

  test('a duplicate → 409 datastore_conflict, in any spelling of the address', async () => {
    ok(await add('198.51.100.1'), 201);
    assertError(await add('198.51.100.1'), 409, 'datastore_conflict');
    ok(await add('2001:db8::10'), 201);
    assertError(await add('2001:0DB8:0000:0000:0000:0000:0000:0010'), 409, 'datastore_conflict');
    assertError(await add('::ffff:198.51.100.1'), 409, 'datastore_conflict');
  });

  test('a bad ip, an empty zone or host → 400 naming each field', async () => {
    for (const ip of ['1.2.3', '256.1.1.1', '01.2.3.4', 'fe80::1%eth0', 'not-an-ip', '1.2.3.4/32']) {
      const body = assertError(await add(ip), 400, 'validation error');
      assert.ok(body.data.ip, `${ip}: ${JSON.stringify(body.data)}`);
    }
    const all = assertError(await h.request('PUT', '/v2/ips', { token: h.master.token, body: { data: { ip: '', zone: '  ', host: '' } } }), 400, 'validation error');
    assert.ok(all.data.ip && all.data.zone && all.data.host, JSON.stringify(all.data));
    const missing = assertError(await h.request('PUT', '/v2/ips', { token: h.master.token, body: { data: {} } }), 400, 'validation error');
    assert.ok(missing.data.ip.required && missing.data.zone.required && missing.data.host.required);
    assertError(await h.request('PUT', '/v2/ips', { token: h.master.token, body: { ip: '9.9.9.9', zone: 'z', host: 'h' } }), 400, 'invalid request envelope');
  });

  test('zone and host are trimmed; IPv6 stored canonical; ::ffff:a.b.c.d stored as a.b.c.d; unknown fields dropped', async () => {
    assert.deepEqual(ok(await h.request('PUT', '/v2/ips', { token: h.master.token, body: { data: { ip: ' 203.0.113.9 ', zone: '  eu-west ', host: ' p9.example.com\t', extra: 1 } } }), 201).data, clean('203.0.113.9', 'eu-west', 'p9.example.com'));
    assert.equal(ok(await add('2001:DB8:0:0:1:0:0:1'), 201).data.ip, '2001:db8::1:0:0:1');
    assert.equal(ok(await add('2001:db8:0000::00ff'), 201).data.id, '2001:db8::ff');
    assert.equal(ok(await add('::ffff:1.2.3.5'), 201).data.ip, '1.2.3.5');
    assert.equal(ok(await h.request('GET', '/v2/ips/1.2.3.5', { token: h.master.token })).data.ip, '1.2.3.5');
    assert.equal(ok(await h.request('GET', '/v2/ips/::ffff:1.2.3.5', { token: h.master.token })).data.ip, '1.2.3.5');
    assert.equal(ok(await h.request('GET', '/v2/ips/2001:db8:0:0:1::1', { token: h.master.token })).data.ip, '2001:db8::1:0:0:1');
    assert.equal(ok(await h.request('GET', `/v2/ips/${encodeURIComponent('2001:db8::ff')}`, { token: h.master.token })).data.ip, '2001:db8::ff');
  });

  test('GET|POST|DELETE /v2/ips/{IP}: read, change zone/host, remove (assigned → 400)', async () => {
    ok(await add('192.0.2.50', 'z1', 'h1'), 201);
    assert.deepEqual(ok(await h.request('GET', '/v2/ips/192.0.2.50', { token: h.master.token })).data, clean('192.0.2.50', 'z1', 'h1'));
    assert.deepEqual(ok(await h.request('POST', '/v2/ips/192.0.2.50', { token: h.master.token, body: { data: { zone: ' z2 ' } } })).data, clean('192.0.2.50', 'z2', 'h1'));
    assert.deepEqual(ok(await h.request('POST', '/v2/ips/192.0.2.50', { token: h.master.token, body: { data: { host: 'h2', ip: '10.0.0.1', assigned_to: h.master.id } } })).data, clean('192.0.2.50', 'z2', 'h2'));
    const emptied = assertError(await h.request('POST', '/v2/ips/192.0.2.50', { token: h.master.token, body: { data: { zone: '' } } }), 400, 'validation error');
    assert.ok(emptied.data.zone);

    const a = await h.account('PoolDelete');
    ok(await h.request('POST', `/v2/accounts/${a.id}/ips/192.0.2.50`, { token: a.token }));
    const refused = assertError(await h.request('DELETE', '/v2/ips/192.0.2.50', { token: h.master.token }), 400, 'validation error');
    assert.ok(refused.data.ip, JSON.stringify(refused.data));
    ok(await h.request('DELETE', `/v2/accounts/${a.id}/ips/192.0.2.50`, { token: a.token }));
    assert.deepEqual(ok(await h.request('DELETE', '/v2/ips/192.0.2.50', { token: h.master.token })).data, clean('192.0.2.50', 'z2', 'h2'));
    assertError(await h.request('GET', '/v2/ips/192.0.2.50', { token: h.master.token }), 404, 'bad_identifier', { cause: '192.0.2.50', message: 'bad identifier' });
    assertError(await h.request('DELETE', '/v2/ips/192.0.2.50', { token: h.master.token }), 404, 'bad_identifier');
    assertError(await h.request('POST', '/v2/ips/192.0.2.50', { token: h.master.token, body: { data: { zone: 'x' } } }), 404, 'bad_identifier');
    assertError(await h.request('GET', '/v2/ips/not-an-ip', { token: h.master.token }), 404, 'bad_identifier');
  });

  test('GET /v2/ips filters by zone, host and status; hosts and zones are sorted and distinct', async () => {
    const p = await startHarness();
    try {
      ok(await add('10.1.0.2', 'zb', 'hb', p), 201);
      ok(await add('10.1.0.10', 'za', 'ha', p), 201);
      ok(await add('10.1.0.9', 'zb', 'ha', p), 201);
      ok(await add('2001:db8::5', 'za', 'hc', p), 201);
      const a = await p.account('Filter');
      ok(await p.request('POST', `/v2/accounts/${a.id}/ips/10.1.0.9`, { token: a.token }));
      const all = ok(await p.request('GET', '/v2/ips', { token: p.master.token })).data;
      assert.equal(all.length, 4);
      assert.deepEqual(all.find((r: { ip: string }) => r.ip === '10.1.0.9'), clean('10.1.0.9', 'zb', 'ha', a.id));
      const ips = (q: string) => p.request('GET', `/v2/ips${q}`, { token: p.master.token }).then((r) => ok(r).data.map((x: { ip: string }) => x.ip).sort());
      assert.deepEqual(await ips('?zone=zb'), ['10.1.0.2', '10.1.0.9']);
      assert.deepEqual(await ips('?host=ha'), ['10.1.0.10', '10.1.0.9']);
      assert.deepEqual(await ips('?status=assigned'), ['10.1.0.9']);
      assert.deepEqual(await ips('?status=available&zone=za'), ['10.1.0.10', '2001:db8::5']);
      assert.deepEqual(await ips('?zone=za&host=hc'), ['2001:db8::5']);
      assert.deepEqual(await ips('?zone=nowhere'), []);
      assert.deepEqual(ok(await p.request('GET', '/v2/ips/hosts', { token: p.master.token })).data, ['ha', 'hb', 'hc']);
      assert.deepEqual(ok(await p.request('GET', '/v2/ips/zones', { token: p.master.token })).data, ['za', 'zb']);
      // The account-level hosts and zones: the same lists, readable by the account.
      assert.deepEqual(ok(await p.request('GET', `/v2/accounts/${a.id}/ips/hosts`, { token: a.token })).data, ['ha', 'hb', 'hc']);
      assert.deepEqual(ok(await p.request('GET', `/v2/accounts/${a.id}/ips/zones`, { token: a.token })).data, ['za', 'zb']);
    } finally {
      await p.close();
    }
  });

  test('only the superduper manages the pool: 403 for others, 401 without a token', async () => {
    const a = await h.account('NotSuper');
    const child = await h.account('NotSuperChild', { parentId: a.id, token: a.token });
    ok(await add('192.0.2.60'), 201);
    const key = ok(await h.request('GET', `/v2/accounts/${a.id}/api_key`, { token: a.token })).data.api_key;
    const apiToken = ok(await h.request('PUT', '/v2/api_auth', { body: { data: { api_key: key } } }), 201).auth_token;
    for (const token of [a.token, child.token, apiToken]) {
      assertError(await h.request('PUT', '/v2/ips', { token, body: { data: { ip: '192.0.2.61', zone: 'z', host: 'h' } } }), 403, 'forbidden', { message: 'forbidden' });
      assertError(await h.request('PUT', `/v2/accounts/${a.id}/ips`, { token, body: { data: { ip: '192.0.2.61', zone: 'z', host: 'h' } } }), 403, 'forbidden');
      for (const url of ['/v2/ips', '/v2/ips/hosts', '/v2/ips/zones', '/v2/ips/192.0.2.60']) assertError(await h.request('GET', url, { token }), 403, 'forbidden');
      assertError(await h.request('POST', '/v2/ips/192.0.2.60', { token, body: { data: { zone: 'mine' } } }), 403, 'forbidden');
      assertError(await h.request('DELETE', '/v2/ips/192.0.2.60', { token }), 403, 'forbidden');
    }
    for (const url of ['/v2/ips', '/v2/ips/hosts', '/v2/ips/zones', '/v2/ips/192.0.2.60']) assertError(await h.request('GET', url), 401, 'invalid_credentials');
    // A user of the master account is not a superduper admin.
    const masterUser = await h.user(h.master.id, 'master.test', 'user', h.master.token);
    assertError(await h.request('PUT', '/v2/ips', { token: masterUser.token, body: { data: { ip: '192.0.2.61', zone: 'z', host: 'h' } } }), 403, 'forbidden');
    assert.equal(ok(await h.request('GET', '/v2/ips/192.0.2.60', { token: h.master.token })).data.zone, 'us-east');
  });
});

describe("an account's IPs", () => {
  let p: Harness;
  let a: Tenant;
  let b: Tenant;
  let child: Tenant;
  let reader: string;

  before(async () => {
    p = await startHarness();
    a = await p.account('Alpha');
    b = await p.account('Beta');
    child = await p.account('AlphaChild', { parentId: a.id, token: a.token });
    reader = (await p.user(a.id, a.realm, 'user', a.token)).token;
    for (const [ip, zone] of [
      ['10.0.0.9', 'us-east'],
      ['10.0.0.10', 'us-west'],
      ['10.0.0.2', 'us-east'],
      ['2001:db8::2', 'us-east'],
      ['1.2.3.4', 'us-east'],
      ['5.6.7.8', 'us-east'],
    ] as const) {
      ok(await add(ip, zone, HOST, p), 201);
    }
  });
  after(() => p.close());

  const get = (url: string, token = a.token) => p.request('GET', url, { token }).then((r) => ok(r).data);

  test('GET /v2/accounts/{A}/ips: available IPs as [{ip, zone}], sorted, zone and quantity', async () => {
    const list = await get(`/v2/accounts/${a.id}/ips`);
    assert.deepEqual(list, [
      { ip: '1.2.3.4', zone: 'us-east' },
      { ip: '5.6.7.8', zone: 'us-east' },
      { ip: '10.0.0.2', zone: 'us-east' },
      { ip: '10.0.0.9', zone: 'us-east' },
      { ip: '10.0.0.10', zone: 'us-west' },
      { ip: '2001:db8::2', zone: 'us-east' },
    ]);
    assert.deepEqual((await get(`/v2/accounts/${a.id}/ips?zone=us-west`)).map((r: { ip: string }) => r.ip), ['10.0.0.10']);
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips?quantity=2`), list.slice(0, 2));
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips?zone=us-east&quantity=1`), [{ ip: '1.2.3.4', zone: 'us-east' }]);
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips?quantity=undefined`), list);
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips?quantity=undefined&zone=us-west&_=1700000000`), [{ ip: '10.0.0.10', zone: 'us-west' }]);
    // A user of A reads it too.
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips`, reader), list);
  });

  test('POST /v2/accounts/{A}/ips (seed body) assigns all → {ips}; assigned IPs leave the available list', async () => {
    const body = ok(await p.request('POST', `/v2/accounts/${a.id}/ips`, { token: a.token, body: '{"data": {"ips" :["1.2.3.4", "5.6.7.8"]}}' }));
    assert.deepEqual(body.data, { ips: ['1.2.3.4', '5.6.7.8'] });
    const available = (await get(`/v2/accounts/${a.id}/ips`)).map((r: { ip: string }) => r.ip);
    assert.ok(!available.includes('1.2.3.4') && !available.includes('5.6.7.8'));
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips/assigned`), [
      { ip: '1.2.3.4', zone: 'us-east' },
      { ip: '5.6.7.8', zone: 'us-east' },
    ]);
    // Others do not see A's IPs as available either.
    assert.ok(!(await get(`/v2/accounts/${b.id}/ips`, b.token)).some((r: { ip: string }) => r.ip === '1.2.3.4'));
  });

  test('GET .../ips/{IP}: the clean ip if available or assigned to A or a descendant, else 404', async () => {
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips/1.2.3.4`), clean('1.2.3.4', 'us-east', HOST, a.id));
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips/1.2.3.4`, reader), clean('1.2.3.4', 'us-east', HOST, a.id));
    assert.deepEqual(await get(`/v2/accounts/${b.id}/ips/10.0.0.2`, b.token), clean('10.0.0.2', 'us-east', HOST));
    assertError(await p.request('GET', `/v2/accounts/${b.id}/ips/1.2.3.4`, { token: b.token }), 404, 'bad_identifier', { cause: '1.2.3.4', message: 'bad identifier' });
    // Even the superduper asking through B's path gets the 404: the IP is not B's.
    assertError(await p.request('GET', `/v2/accounts/${b.id}/ips/1.2.3.4`, { token: p.master.token }), 404, 'bad_identifier');
    // Assigned to a descendant: visible from the parent, not the other way round.
    ok(await p.request('POST', `/v2/accounts/${child.id}/ips/10.0.0.2`, { token: child.token }));
    assert.deepEqual(await get(`/v2/accounts/${a.id}/ips/10.0.0.2`), clean('10.0.0.2', 'us-east', HOST, child.id));
    assertError(await p.request('GET', `/v2/accounts/${child.id}/ips/1.2.3.4`, { token: child.token }), 404, 'bad_identifier');
    ok(await p.request('DELETE', `/v2/accounts/${child.id}/ips/10.0.0.2`, { token: child.token }));
    assertError(await p.request('GET', `/v2/accounts/${a.id}/ips/192.0.2.1`, { token: a.token }), 404, 'bad_identifier');
    assertError(await p.request('GET', `/v2/accounts/${a.id}/ips/junk`, { token: a.token }), 404, 'bad_identifier');
  });

  test('a list assign is all or nothing, with KAZOO per-IP errors under ips.N', async () => {
    const before = await get(`/v2/accounts/${b.id}/ips`, b.token);
    const response = await p.request('POST', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips: ['10.0.0.9', '1.2.3.4', '192.0.2.200'] } } });
    const body = assertError(response, 400, 'validation error');
    assert.deepEqual(body.data, {
      'ips.1': { forbidden: { message: 'ip assigned to another account', value: '1.2.3.4' } },
      'ips.2': { not_found: { message: 'ip not found', value: '192.0.2.200' } },
    });
    // Nothing was assigned: 10.0.0.9 (valid) is still available.
    assert.deepEqual(await get(`/v2/accounts/${b.id}/ips`, b.token), before);
    assert.deepEqual(await get(`/v2/accounts/${b.id}/ips/assigned`, b.token), []);
    // Already A's: superfluous.
    const again = assertError(await p.request('POST', `/v2/accounts/${a.id}/ips`, { token: a.token, body: { data: { ips: ['10.0.0.9', '5.6.7.8'] } } }), 400, 'validation error');
    assert.deepEqual(again.data, { 'ips.1': { superfluous: { message: 'ip already assigned', value: '5.6.7.8' } } });
    assert.equal((await get(`/v2/accounts/${a.id}/ips/10.0.0.9`)).status, 'available');
    // Not an address at all: named by index, nothing assigned.
    const junk = assertError(await p.request('POST', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips: ['10.0.0.9', 'banana'] } } }), 400, 'validation error');
    assert.ok(junk.data['ips.1'], JSON.stringify(junk.data));
    assert.equal((await get(`/v2/accounts/${a.id}/ips/10.0.0.9`)).status, 'available');
    // The same IP twice in one list: the second is superfluous, nothing assigned.
    const twice = assertError(await p.request('POST', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips: ['10.0.0.9', '10.0.0.9'] } } }), 400, 'validation error');
    assert.ok(twice.data['ips.1'], JSON.stringify(twice.data));
    assert.equal((await get(`/v2/accounts/${a.id}/ips/10.0.0.9`)).status, 'available');
    // Bodies: no data → envelope error; no ips → required.
    assertError(await p.request('POST', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { ips: ['10.0.0.9'] } }), 400, 'invalid request envelope');
    const missing = assertError(await p.request('POST', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: {} } }), 400, 'validation error');
    assert.ok(missing.data.ips.required);
  });

  test('POST .../ips/{IP} assigns one (body absent or the fetched clean ip, ignored); DELETE .../ips/{IP} releases it', async () => {
    const fetched = await get(`/v2/accounts/${b.id}/ips/10.0.0.9`, b.token);
    const assigned = ok(await p.request('POST', `/v2/accounts/${b.id}/ips/10.0.0.9`, { token: b.token, body: { data: { ...fetched, assigned_to: a.id, zone: 'elsewhere' } } }));
    assert.deepEqual(assigned.data, clean('10.0.0.9', 'us-east', HOST, b.id));
    const seedBody = ok(await p.request('POST', `/v2/accounts/${b.id}/ips/10.0.0.10`, { token: b.token, body: '{"data": {}}' }));
    assert.deepEqual(seedBody.data, clean('10.0.0.10', 'us-west', HOST, b.id));
    ok(await p.request('DELETE', `/v2/accounts/${b.id}/ips/10.0.0.10`, { token: b.token }));
    const noBody = ok(await p.request('POST', `/v2/accounts/${b.id}/ips/10.0.0.10`, { token: b.token }));
    assert.equal(noBody.data.assigned_to, b.id);
    // Again: superfluous; another account's: forbidden; unknown: 404.
    const again = assertError(await p.request('POST', `/v2/accounts/${b.id}/ips/10.0.0.9`, { token: b.token }), 400, 'validation error');
    assert.equal(Object.values(again.data as Record<string, Record<string, { message: string }>>)[0]!.superfluous.message, 'ip already assigned');
    const theirs = assertError(await p.request('POST', `/v2/accounts/${a.id}/ips/10.0.0.9`, { token: a.token }), 400, 'validation error');
    assert.equal(Object.values(theirs.data as Record<string, Record<string, { message: string }>>)[0]!.forbidden.message, 'ip assigned to another account');
    assertError(await p.request('POST', `/v2/accounts/${b.id}/ips/192.0.2.250`, { token: b.token }), 404, 'bad_identifier');

    // Release (seed response: status available, no assigned_to).
    const released = ok(await p.request('DELETE', `/v2/accounts/${b.id}/ips/10.0.0.9`, { token: b.token }));
    assert.deepEqual(released.data, clean('10.0.0.9', 'us-east', HOST));
    // Releasing what is not yours: 404 (no peeking); what is available: 400 superfluous.
    assertError(await p.request('DELETE', `/v2/accounts/${b.id}/ips/1.2.3.4`, { token: b.token }), 404, 'bad_identifier');
    const notAssigned = assertError(await p.request('DELETE', `/v2/accounts/${b.id}/ips/10.0.0.9`, { token: b.token }), 400, 'validation error');
    assert.equal(Object.values(notAssigned.data as Record<string, Record<string, { message: string }>>)[0]!.superfluous.message, 'ip not assigned');
    ok(await p.request('DELETE', `/v2/accounts/${b.id}/ips/10.0.0.10`, { token: b.token }));
  });

  test('DELETE /v2/accounts/{A}/ips: a list releases those, ips: [] releases none, no body releases all', async () => {
    ok(await p.request('POST', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips: ['10.0.0.9', '10.0.0.10', '2001:db8::2'] } } }));
    // One bad entry → nothing released.
    const bad = assertError(await p.request('DELETE', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips: ['10.0.0.9', '1.2.3.4'] } } }), 400, 'validation error');
    assert.deepEqual(bad.data, { 'ips.1': { superfluous: { message: 'ip not assigned', value: '1.2.3.4' } } });
    assert.equal((await get(`/v2/accounts/${b.id}/ips/assigned`, b.token)).length, 3);
    assert.deepEqual(ok(await p.request('DELETE', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips: [] } } })).data, { ips: [] });
    assert.equal((await get(`/v2/accounts/${b.id}/ips/assigned`, b.token)).length, 3);
    assert.deepEqual(ok(await p.request('DELETE', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips: ['2001:0db8::0002'] } } })).data, { ips: ['2001:db8::2'] });
    // An ips that is not a list is refused, and releases nothing (never "release all").
    for (const ips of ['10.0.0.9', null, [1], { ip: '10.0.0.9' }]) {
      const refused = assertError(await p.request('DELETE', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips } } }), 400, 'validation error');
      assert.ok(Object.keys(refused.data).every((k) => k === 'ips' || k.startsWith('ips.')), JSON.stringify(refused.data));
    }
    assert.equal((await get(`/v2/accounts/${b.id}/ips/assigned`, b.token)).length, 2);
    // The seed's example: no body at all (with the JSON content type the SDKs send) releases all of B's.
    const all = ok(await p.request('DELETE', `/v2/accounts/${b.id}/ips`, { token: b.token, headers: { 'content-type': 'application/json' }, body: '' }));
    assert.deepEqual([...all.data.ips].sort(), ['10.0.0.10', '10.0.0.9']);
    assert.deepEqual(await get(`/v2/accounts/${b.id}/ips/assigned`, b.token), []);
    // A's IPs were untouched; a data without ips releases all of A's.
    assert.equal((await get(`/v2/accounts/${a.id}/ips/assigned`)).length, 2);
    assert.deepEqual([...ok(await p.request('DELETE', `/v2/accounts/${a.id}/ips`, { token: a.token, body: { data: {} } })).data.ips].sort(), ['1.2.3.4', '5.6.7.8']);
    assert.deepEqual(ok(await p.request('DELETE', `/v2/accounts/${a.id}/ips`, { token: a.token })).data, { ips: [] });
  });

  test('who: a user of A reads but cannot assign or release; another tenant 403; the parent admin and superduper may', async () => {
    assertError(await p.request('POST', `/v2/accounts/${a.id}/ips`, { token: reader, body: { data: { ips: ['10.0.0.9'] } } }), 403, 'forbidden');
    assertError(await p.request('POST', `/v2/accounts/${a.id}/ips/10.0.0.9`, { token: reader }), 403, 'forbidden');
    assertError(await p.request('DELETE', `/v2/accounts/${a.id}/ips/10.0.0.9`, { token: reader }), 403, 'forbidden');
    assertError(await p.request('DELETE', `/v2/accounts/${a.id}/ips`, { token: reader }), 403, 'forbidden');
    for (const url of ['', '/assigned', '/hosts', '/zones', '/10.0.0.9']) {
      ok(await p.request('GET', `/v2/accounts/${a.id}/ips${url}`, { token: reader }));
      assertError(await p.request('GET', `/v2/accounts/${a.id}/ips${url}`, { token: b.token }), 403, 'forbidden');
      assertError(await p.request('GET', `/v2/accounts/${a.id}/ips${url}`), 401, 'invalid_credentials');
    }
    assertError(await p.request('POST', `/v2/accounts/${a.id}/ips`, { token: b.token, body: { data: { ips: ['10.0.0.9'] } } }), 403, 'forbidden');
    assertError(await p.request('POST', `/v2/accounts/${a.id}/ips/10.0.0.9`, { token: b.token }), 403, 'forbidden');
    assertError(await p.request('DELETE', `/v2/accounts/${a.id}/ips`, { token: b.token }), 403, 'forbidden');
    assertError(await p.request('POST', `/v2/accounts/${a.id}/ips/10.0.0.9`, { token: child.token }), 403, 'forbidden');
    // The parent's admin assigns to its child; the superduper to anyone.
    assert.equal(ok(await p.request('POST', `/v2/accounts/${child.id}/ips/10.0.0.9`, { token: a.token })).data.assigned_to, child.id);
    assert.equal(ok(await p.request('DELETE', `/v2/accounts/${child.id}/ips/10.0.0.9`, { token: p.master.token })).data.status, 'available');
    assert.equal(ok(await p.request('POST', `/v2/accounts/${b.id}/ips/10.0.0.9`, { token: p.master.token })).data.assigned_to, b.id);
    ok(await p.request('DELETE', `/v2/accounts/${b.id}/ips`, { token: b.token }));
    const missing = '0'.repeat(32);
    assertError(await p.request('GET', `/v2/accounts/${missing}/ips`, { token: p.master.token }), 404, 'bad_identifier', { cause: missing, message: 'bad identifier' });
    assertError(await p.request('POST', `/v2/accounts/${missing}/ips/10.0.0.9`, { token: p.master.token }), 404, 'bad_identifier');
  });
});

test('/assigned lists the local zone first when the node has a zone', async () => {
  const z = await startHarness({ zone: 'us-west' });
  try {
    const a = await z.account('Zoned');
    for (const [ip, zone] of [
      ['10.2.0.1', 'us-east'],
      ['10.2.0.2', 'us-west'],
      ['10.2.0.3', 'eu-central'],
      ['10.2.0.4', 'us-west'],
    ] as const) {
      ok(await add(ip, zone, HOST, z), 201);
    }
    ok(await z.request('POST', `/v2/accounts/${a.id}/ips`, { token: a.token, body: { data: { ips: ['10.2.0.1', '10.2.0.2', '10.2.0.3', '10.2.0.4'] } } }));
    const assigned = ok(await z.request('GET', `/v2/accounts/${a.id}/ips/assigned`, { token: a.token })).data;
    assert.deepEqual(assigned.slice(0, 2), [
      { ip: '10.2.0.2', zone: 'us-west' },
      { ip: '10.2.0.4', zone: 'us-west' },
    ]);
    assert.deepEqual(assigned.slice(2).map((r: { ip: string }) => r.ip).sort(), ['10.2.0.1', '10.2.0.3']);
  } finally {
    await z.close();
  }
});

test('accounts racing for one IP: exactly one wins each round, the others get 400 forbidden, never a 5xx', async () => {
  const r = await startHarness();
  try {
    const racers = await Promise.all(['RaceA', 'RaceB', 'RaceC', 'RaceD'].map((name) => r.account(name)));
    const rounds = 50;
    for (let i = 0; i < rounds; i++) ok(await add(`100.${64 + Math.floor(i / 250)}.${i % 250}.1`, 'race', 'h', r), 201);
    const wins = new Map<string, number>();
    for (let i = 0; i < rounds; i++) {
      const ip = `100.${64 + Math.floor(i / 250)}.${i % 250}.1`;
      // Half the rounds by the single-IP path, half by the list path (with a second, free IP... none).
      const responses = await Promise.all(
        racers.map((racer) =>
          i % 2 === 0
            ? r.request('POST', `/v2/accounts/${racer.id}/ips/${ip}`, { token: racer.token })
            : r.request('POST', `/v2/accounts/${racer.id}/ips`, { token: racer.token, body: { data: { ips: [ip] } } }),
        ),
      );
      const statuses = responses.map((x) => x.statusCode);
      assert.ok(statuses.every((s) => s < 500), `round ${i}: ${statuses}`);
      const winners = responses.flatMap((x, k) => (x.statusCode === 200 ? [racers[k]!] : []));
      assert.equal(winners.length, 1, `round ${i}: ${statuses}`);
      for (const loser of responses.filter((x) => x.statusCode !== 200)) {
        const body = assertError(loser, 400, 'validation error');
        const rules = Object.values(body.data as Record<string, Record<string, { message: string }>>)[0]!;
        assert.equal(rules.forbidden?.message, 'ip assigned to another account', JSON.stringify(body.data));
      }
      const pool = ok(await r.request('GET', `/v2/ips/${ip}`, { token: r.master.token })).data;
      assert.equal(pool.assigned_to, winners[0]!.id);
      wins.set(winners[0]!.id, (wins.get(winners[0]!.id) ?? 0) + 1);
    }
    const total = [...wins.values()].reduce((x, y) => x + y, 0);
    assert.equal(total, rounds);
    const assigned = await Promise.all(racers.map((racer) => r.request('GET', `/v2/accounts/${racer.id}/ips/assigned`, { token: racer.token }).then((x) => ok(x).data.length)));
    assert.equal(assigned.reduce((x, y) => x + y, 0), rounds);
  } finally {
    await r.close();
  }
});

test('overlapping list assigns racing: one wins whole, the loser gets nothing (all or none)', async () => {
  const r = await startHarness();
  try {
    const [a, b] = await Promise.all([r.account('OverlapA'), r.account('OverlapB')]);
    const rounds = 25;
    for (let i = 0; i < rounds; i++) for (const k of [1, 2, 3]) ok(await add(`100.70.${i}.${k}`, 'race', 'h', r), 201);
    for (let i = 0; i < rounds; i++) {
      const [x, y, z] = [1, 2, 3].map((k) => `100.70.${i}.${k}`);
      const [ra, rb] = await Promise.all([
        r.request('POST', `/v2/accounts/${a.id}/ips`, { token: a.token, body: { data: { ips: [x, y] } } }),
        r.request('POST', `/v2/accounts/${b.id}/ips`, { token: b.token, body: { data: { ips: [z, y] } } }),
      ]);
      const statuses = [ra.statusCode, rb.statusCode].sort();
      assert.deepEqual(statuses, [200, 400], `round ${i}`);
      const [winner, loser, loserBody, freeIp] = ra.statusCode === 200 ? [a, b, rb, z] : [b, a, ra, x];
      assert.deepEqual(assertError(loserBody, 400, 'validation error').data, { 'ips.1': { forbidden: { message: 'ip assigned to another account', value: y } } });
      const pool = ok(await r.request('GET', `/v2/ips?zone=race&status=assigned`, { token: r.master.token })).data.filter((row: { ip: string }) => row.ip.startsWith(`100.70.${i}.`));
      assert.ok(pool.every((row: { assigned_to: string }) => row.assigned_to === winner.id), JSON.stringify(pool));
      assert.equal(pool.length, 2);
      assert.equal(ok(await r.request('GET', `/v2/ips/${freeIp}`, { token: r.master.token })).data.status, 'available', `${loser.id} kept nothing`);
    }
  } finally {
    await r.close();
  }
});
