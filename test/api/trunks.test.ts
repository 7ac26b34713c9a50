// Trunks and their IP ACL entries (seed 003, api.md §5): CRUD, the seed's object, address
// validation, cross-tenant overlap (including a real race), the per-trunk limit and the lookup.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError } from '../support/responses.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness({ maxIpAclsPerTrunk: '3' });
});
after(() => h.close());

type Tenant = { id: string; token: string; realm: string };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SEED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

async function trunk(t: Tenant, name = 'Main', extra: Record<string, unknown> = {}) {
  const created = await h.request('PUT', `/v2/accounts/${t.id}/trunks`, { token: t.token, body: { data: { name, ...extra } } });
  assert.equal(created.statusCode, 201, created.body);
  return created.json().data.id as string;
}

function addAcl(t: Tenant, trunkId: string, data: Record<string, unknown>, token = t.token) {
  return h.request('PUT', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls`, { token, body: { data } });
}

async function acl(t: Tenant, trunkId: string, ip: string, extra: Record<string, unknown> = {}) {
  const created = await addAcl(t, trunkId, { ip_address: ip, ...extra });
  assert.equal(created.statusCode, 201, created.body);
  return created.json().data as { id: string; ip_address: string; enabled: boolean };
}

async function lookup(ip: string) {
  return h.request('GET', `/v2/ip_acls/lookup?ip=${encodeURIComponent(ip)}`, { token: h.master.token });
}

describe('trunks', () => {
  test('CRUD: PUT 201 with a UUID v4 id and enabled true; GET list/one; POST; PATCH; DELETE', async () => {
    const t = await h.account('Trunk Crud');
    const created = await h.request('PUT', `/v2/accounts/${t.id}/trunks`, { token: t.token, body: { data: { name: 'Office', colour: 'red' } } });
    assert.equal(created.statusCode, 201);
    const doc = created.json().data;
    assert.match(doc.id, UUID_V4);
    assert.equal(doc.name, 'Office');
    assert.equal(doc.enabled, true);
    assert.equal(doc.colour, undefined, 'unknown fields are dropped');
    assert.equal(created.headers.location, `/v2/accounts/${t.id}/trunks/${doc.id}`);
    assert.equal(created.json().revision, created.headers.etag);

    const list = await h.request('GET', `/v2/accounts/${t.id}/trunks`, { token: t.token });
    assert.deepEqual(list.json().data.map((x: { id: string }) => x.id), [doc.id]);
    const one = await h.request('GET', `/v2/accounts/${t.id}/trunks/${doc.id}`, { token: t.token });
    assert.equal(one.json().data.name, 'Office');

    const posted = await h.request('POST', `/v2/accounts/${t.id}/trunks/${doc.id}`, { token: t.token, body: { data: { name: 'Renamed', enabled: false } } });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.equal(posted.json().data.enabled, false);
    const patched = await h.request('PATCH', `/v2/accounts/${t.id}/trunks/${doc.id}`, { token: t.token, body: { data: { enabled: true } } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal(patched.json().data.name, 'Renamed');
    assert.equal(patched.json().data.enabled, true);

    const stale = await h.request('POST', `/v2/accounts/${t.id}/trunks/${doc.id}`, { token: t.token, body: { data: { name: 'x' } }, headers: { 'if-match': created.json().revision } });
    assertError(stale, 412, 'precondition failed');

    const bad = assertError(await h.request('PUT', `/v2/accounts/${t.id}/trunks`, { token: t.token, body: { data: { name: '', enabled: 'yes' } } }), 400, 'validation error');
    assert.ok(bad.data.name && bad.data.enabled, JSON.stringify(bad.data));
    assertError(await h.request('PUT', `/v2/accounts/${t.id}/trunks`, { token: t.token, body: { name: 'x' } }), 400, 'invalid request envelope');

    const removed = await h.request('DELETE', `/v2/accounts/${t.id}/trunks/${doc.id}`, { token: t.token });
    assert.equal(removed.statusCode, 200);
    assertError(await h.request('GET', `/v2/accounts/${t.id}/trunks/${doc.id}`, { token: t.token }), 404, 'bad_identifier');
    assertError(await h.request('DELETE', `/v2/accounts/${t.id}/trunks/${doc.id}`, { token: t.token }), 404, 'bad_identifier');
  });

  test("another account's trunk is not found under this account", async () => {
    const a = await h.account('Trunk Owner');
    const b = await h.account('Trunk Other');
    const ta = await trunk(a);
    const asOwnerPath = await h.request('GET', `/v2/accounts/${b.id}/trunks/${ta}`, { token: b.token });
    const body = assertError(asOwnerPath, 404, 'bad_identifier');
    assert.equal(body.data.cause, ta);
    assertError(await h.request('GET', `/v2/accounts/${a.id}/trunks/${ta}`, { token: b.token }), 403, 'forbidden');
  });
});

describe('IP ACL entries', () => {
  test("exactly the seed's object, with the seed's timestamps", async () => {
    const t = await h.account('Seed Acl');
    const trunkId = await trunk(t);
    const created = await addAcl(t, trunkId, { ip_address: '203.0.113.50', description: 'Office static IP', junk: 1 });
    assert.equal(created.statusCode, 201, created.body);
    const doc = created.json().data;
    assert.deepEqual(Object.keys(doc).sort(), ['created_at', 'description', 'enabled', 'id', 'ip_address', 'trunk_id', 'updated_at']);
    assert.match(doc.id, UUID_V4);
    assert.equal(doc.trunk_id, trunkId);
    assert.equal(doc.ip_address, '203.0.113.50');
    assert.equal(doc.description, 'Office static IP');
    assert.equal(doc.enabled, true);
    assert.match(doc.created_at, SEED_TIME);
    assert.match(doc.updated_at, SEED_TIME);
    assert.ok(Math.abs(Date.parse(doc.created_at) - Date.now()) < 5000);
    assert.equal(created.headers.location, `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${doc.id}`);

    const read = await h.request('GET', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${doc.id}`, { token: t.token });
    assert.deepEqual(read.json().data, doc);
    const listed = await h.request('GET', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls`, { token: t.token });
    assert.deepEqual(listed.json().data, [doc]);

    const patched = await h.request('PATCH', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${doc.id}`, { token: t.token, body: { data: { description: 'PBX server' } } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal(patched.json().data.description, 'PBX server');
    assert.equal(patched.json().data.ip_address, '203.0.113.50');
    assert.equal(patched.json().data.created_at, doc.created_at);
    assert.match(patched.json().data.updated_at, SEED_TIME);

    const posted = await h.request('POST', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${doc.id}`, { token: t.token, body: { data: { ip_address: '203.0.113.51' } } });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.equal(posted.json().data.ip_address, '203.0.113.51');
    assert.equal(posted.json().data.enabled, true);

    const removed = await h.request('DELETE', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${doc.id}`, { token: t.token });
    assert.equal(removed.statusCode, 200);
    assertError(await h.request('GET', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${doc.id}`, { token: t.token }), 404, 'bad_identifier');
  });

  test('GET /v2/accounts/{A}/ip_acls lists the account\'s, optionally of one trunk; deleting a trunk deletes its entries', async () => {
    const t = await h.account('Acl List');
    const t1 = await trunk(t, 'One');
    const t2 = await trunk(t, 'Two');
    const a = await acl(t, t1, '8.70.0.10');
    const b = await acl(t, t2, '8.70.0.20');
    const all = (await h.request('GET', `/v2/accounts/${t.id}/ip_acls`, { token: t.token })).json().data.map((x: { id: string }) => x.id).sort();
    assert.deepEqual(all, [a.id, b.id].sort());
    const ofOne = (await h.request('GET', `/v2/accounts/${t.id}/ip_acls?trunk_id=${t1}`, { token: t.token })).json().data;
    assert.deepEqual(ofOne.map((x: { id: string }) => x.id), [a.id]);
    assertError(await h.request('GET', `/v2/accounts/${t.id}/ip_acls?trunk_id=${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { token: t.token }), 404, 'bad_identifier');
    assert.equal((await lookup('8.70.0.20')).statusCode, 200);

    assert.equal((await h.request('DELETE', `/v2/accounts/${t.id}/trunks/${t2}`, { token: t.token })).statusCode, 200);
    const left = (await h.request('GET', `/v2/accounts/${t.id}/ip_acls`, { token: t.token })).json().data.map((x: { id: string }) => x.id);
    assert.deepEqual(left, [a.id]);
    assertError(await lookup('8.70.0.20'), 404, 'bad_identifier');
    // Not an address at all: the query is wrong, not the address unknown.
    const garbage = assertError(await lookup('8.70.0.999'), 400, 'validation error');
    assert.ok(garbage.data.ip.format, JSON.stringify(garbage.data));
    // The address is free again for another tenant.
    const other = await h.account('Acl List Other');
    await acl(other, await trunk(other), '8.70.0.20');
  });

  test('addresses: strict dotted decimal, IPv6 and CIDR accepted, garbage refused', async () => {
    const t = await h.account('Acl Format');
    const trunkId = await trunk(t);
    for (const bad of ['1.2.3', '01.2.3.4', '1.2.3.04', '0x7f.0.0.1', '1.2.3.4.5', '256.1.1.1', ' 1.2.3.4', '1.2.3.4 ', '', 'garbage', 'fe80::1%eth0', '2001:db8::g', '1.2.3.4/33', '8.8.8.8/']) {
      const body = assertError(await addAcl(t, trunkId, { ip_address: bad }), 400, 'validation error');
      assert.ok(body.data.ip_address, `${JSON.stringify(bad)}: ${JSON.stringify(body.data)}`);
    }
    const missing = assertError(await addAcl(t, trunkId, { description: 5, enabled: 'no' }), 400, 'validation error');
    assert.ok(missing.data.ip_address.required && missing.data.description.type && missing.data.enabled.type, JSON.stringify(missing.data));

    assert.equal((await acl(t, trunkId, '2A02:0:0:0::1')).ip_address, '2a02::1');
    assert.equal((await acl(t, trunkId, '8.60.0.0/24')).ip_address, '8.60.0.0/24');
    const third = await addAcl(t, await trunk(t, 'Second'), { ip_address: '::ffff:8.8.4.4' });
    assert.equal(third.statusCode, 201, third.body);
    assert.equal(third.json().data.ip_address, '8.8.4.4');
    // Host bits set in a CIDR → 400 with the network form.
    const hostBits = assertError(await addAcl(t, await trunk(t, 'Third'), { ip_address: '8.8.8.1/24' }), 400, 'validation error');
    assert.match(JSON.stringify(hostBits.data.ip_address), /8\.8\.8\.0\/24/);
  });

  test('prefix wider than /16 (v4) or /32 (v6): refused for a tenant, allowed for superduper', async () => {
    const t = await h.account('Acl Wide');
    const trunkId = await trunk(t);
    for (const wide of ['11.0.0.0/15', '11.0.0.0/8', '2a00::/31', '2a00::/16']) {
      const body = assertError(await addAcl(t, trunkId, { ip_address: wide }), 400, 'validation error');
      assert.ok(body.data.ip_address, JSON.stringify(body.data));
    }
    const ok16 = await acl(t, trunkId, '11.1.0.0/16');
    const ok32 = await acl(t, trunkId, '2a00:1::/32');
    const bySuper = await addAcl(t, await trunk(t, 'Wide'), { ip_address: '12.0.0.0/8' }, h.master.token);
    assert.equal(bySuper.statusCode, 201, bySuper.body);
    for (const id of [ok16.id, ok32.id, bySuper.json().data.id]) assert.match(id, UUID_V4);
    // 0.0.0.0/0 is refused even for a superduper: it holds non-public ranges.
    assertError(await addAcl(t, trunkId, { ip_address: '0.0.0.0/0' }, h.master.token), 400, 'validation error');
  });

  const REFUSED: [string, string][] = [
    ['0.0.0.0/8', '0.1.2.3'],
    ['10.0.0.0/8', '10.20.30.40'],
    ['100.64.0.0/10', '100.100.1.1'],
    ['127.0.0.0/8', '127.0.0.1'],
    ['169.254.0.0/16', '169.254.1.1'],
    ['172.16.0.0/12', '172.20.1.1'],
    ['192.0.0.0/24', '192.0.0.9'],
    ['192.168.0.0/16', '192.168.1.1'],
    ['198.18.0.0/15', '198.19.0.1'],
    ['224.0.0.0/4', '239.1.1.1'],
    ['240.0.0.0/4', '250.1.1.1'],
    ['255.255.255.255/32', '255.255.255.255'],
    ['::/128', '::'],
    ['::1/128', '::1'],
    ['fc00::/7', 'fd12:3456::1'],
    ['fe80::/10', 'fe80::1'],
    ['ff00::/8', 'ff02::1'],
  ];
  const ALWAYS = new Set(['0.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4', '255.255.255.255/32', '::/128', 'ff00::/8']);

  test('every non-public range is refused, naming the range', async () => {
    const t = await h.account('Acl Private');
    const trunkId = await trunk(t);
    for (const [range, ip] of REFUSED) {
      const body = assertError(await addAcl(t, trunkId, { ip_address: ip }), 400, 'validation error');
      const message = JSON.stringify(body.data.ip_address);
      assert.ok(message.includes(range) || (range === '255.255.255.255/32' && message.includes('240.0.0.0/4')), `${ip}: ${message}`);
    }
    // A block that is only partly non-public is refused too.
    const partly = assertError(await addAcl(t, trunkId, { ip_address: '172.0.0.0/11' }, h.master.token), 400, 'validation error');
    assert.match(JSON.stringify(partly.data), /172\.16\.0\.0\/12/);
    // Documentation ranges are accepted (the seed's own example), and blocks holding them.
    for (const ip of ['203.0.113.50', '192.0.2.1', '198.51.100.0/24', '2001:db8::5', '2001:db8::/32']) await acl(t, await trunk(t, ip), ip);
    await acl(t, await trunk(t, 'big'), '203.0.0.0/16');
  });

  test('allowPrivateTrunkIps accepts private ranges but never unspecified, multicast or 240/4', async () => {
    const other = await startHarness({ allowPrivateTrunkIps: 'true' });
    try {
      const t = await other.account('Private Ok');
      const trunkId = (await other.request('PUT', `/v2/accounts/${t.id}/trunks`, { token: t.token, body: { data: { name: 'p' } } })).json().data.id;
      for (const [range, ip] of REFUSED) {
        const response = await other.request('PUT', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls`, { token: t.token, body: { data: { ip_address: ip } } });
        if (ALWAYS.has(range)) assert.equal(response.statusCode, 400, `${ip} must stay refused`);
        else assert.equal(response.statusCode, 201, `${ip}: ${response.body}`);
      }
    } finally {
      await other.close();
    }
  });
});

describe('overlap, lookup and limits', () => {
  test('cross-tenant overlap → 409 datastore_conflict: exact and nested, both ways', async () => {
    const a = await h.account('Overlap A');
    const b = await h.account('Overlap B');
    const ta = await trunk(a);
    const tb = await trunk(b);
    await acl(a, ta, '8.10.0.0/24');
    for (const ip of ['8.10.0.0/24', '8.10.0.5', '8.10.0.128/25', '8.10.0.0/16']) {
      const body = assertError(await addAcl(b, tb, { ip_address: ip }), 409, 'datastore_conflict');
      assert.equal(body.data.message, 'conflicting documents');
    }
    // IPv6 too.
    await acl(a, ta, '2a01:4f8::/32');
    assertError(await addAcl(b, tb, { ip_address: '2a01:4f8:1::1' }), 409, 'datastore_conflict');
    // Adjacent blocks are fine.
    await acl(b, tb, '8.10.1.0/24');
  });

  test('a disabled entry or trunk does not conflict, but enabling it would → 409', async () => {
    const a = await h.account('Enable A');
    const b = await h.account('Enable B');
    const ta = await trunk(a);
    await acl(a, ta, '8.20.0.1');
    const tb = await trunk(b);
    const disabled = await acl(b, tb, '8.20.0.1', { enabled: false });
    assert.equal(disabled.enabled, false);
    assertError(await h.request('PATCH', `/v2/accounts/${b.id}/trunks/${tb}/ip_acls/${disabled.id}`, { token: b.token, body: { data: { enabled: true } } }), 409, 'datastore_conflict');
    const still = await h.request('GET', `/v2/accounts/${b.id}/trunks/${tb}/ip_acls/${disabled.id}`, { token: b.token });
    assert.equal(still.json().data.enabled, false);

    const tOff = await trunk(b, 'Off', { enabled: false });
    await acl(b, tOff, '8.20.0.0/24');
    assertError(await h.request('PATCH', `/v2/accounts/${b.id}/trunks/${tOff}`, { token: b.token, body: { data: { enabled: true } } }), 409, 'datastore_conflict');
    assert.equal((await h.request('GET', `/v2/accounts/${b.id}/trunks/${tOff}`, { token: b.token })).json().data.enabled, false);
    // A disabled entry never authenticates.
    assert.equal((await lookup('8.20.0.1')).json().data.account_id, a.id);
    assertError(await lookup('8.20.0.2'), 404, 'bad_identifier');
  });

  test('same block on two trunks of one account → 409; nested blocks fine, the longest prefix decides', async () => {
    const t = await h.account('Nested');
    const t1 = await trunk(t, 'Wide');
    const t2 = await trunk(t, 'Narrow');
    const t3 = await trunk(t, 'Host');
    const wide = await acl(t, t1, '8.30.0.0/16');
    assertError(await addAcl(t, t2, { ip_address: '8.30.0.0/16' }), 409, 'datastore_conflict');
    const narrow = await acl(t, t2, '8.30.5.0/24');
    const host = await acl(t, t3, '8.30.5.5');
    const at = async (ip: string) => {
      const response = await lookup(ip);
      assert.equal(response.statusCode, 200, response.body);
      return response.json().data;
    };
    assert.deepEqual(await at('8.30.5.5'), { ip: '8.30.5.5', account_id: t.id, trunk_id: t3, ip_acl_id: host.id, ip_address: '8.30.5.5' });
    assert.equal((await at('8.30.5.6')).ip_acl_id, narrow.id);
    assert.equal((await at('8.30.9.9')).ip_acl_id, wide.id);
    assert.equal((await at('::ffff:8.30.9.9')).ip_acl_id, wide.id);
    // Disabling the trunk of the host entry: the /24 decides at once.
    await h.request('PATCH', `/v2/accounts/${t.id}/trunks/${t3}`, { token: t.token, body: { data: { enabled: false } } });
    assert.equal((await at('8.30.5.5')).ip_acl_id, narrow.id);
    await h.request('PATCH', `/v2/accounts/${t.id}/trunks/${t2}/ip_acls/${narrow.id}`, { token: t.token, body: { data: { enabled: false } } });
    assert.equal((await at('8.30.5.5')).ip_acl_id, wide.id);
    assertError(await lookup('8.31.0.1'), 404, 'bad_identifier');
  });

  test('lookup: superduper only, a missing ip → 400, and every change visible to the very next lookup', async () => {
    const t = await h.account('Lookup');
    const trunkId = await trunk(t);
    assertError(await h.request('GET', '/v2/ip_acls/lookup?ip=8.8.8.8', { token: t.token }), 403, 'forbidden');
    assertError(await h.request('GET', '/v2/ip_acls/lookup', { token: h.master.token }), 400, 'validation error');
    for (let i = 1; i <= 30; i++) {
      const ip = `8.40.${i}.1`;
      assertError(await lookup(ip), 404, 'bad_identifier');
      const entry = await acl(t, trunkId, ip);
      assert.equal((await lookup(ip)).json().data.ip_acl_id, entry.id, `round ${i}`);
      const moved = await h.request('POST', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${entry.id}`, { token: t.token, body: { data: { ip_address: `8.41.${i}.1` } } });
      assert.equal(moved.statusCode, 200, moved.body);
      assertError(await lookup(ip), 404, 'bad_identifier');
      assert.equal((await lookup(`8.41.${i}.1`)).json().data.ip_acl_id, entry.id);
      await h.request('DELETE', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${entry.id}`, { token: t.token });
      assertError(await lookup(`8.41.${i}.1`), 404, 'bad_identifier');
    }
  });

  test('per-trunk limit → 400 maxItems naming the limit (limit 3)', async () => {
    const t = await h.account('Limit');
    const trunkId = await trunk(t);
    for (const ip of ['8.50.0.1', '8.50.0.2', '8.50.0.3']) await acl(t, trunkId, ip);
    const body = assertError(await addAcl(t, trunkId, { ip_address: '8.50.0.4' }), 400, 'validation error');
    const rule = Object.values(body.data as Record<string, Record<string, { message: string }>>)[0]!;
    assert.ok(rule.maxItems, JSON.stringify(body.data));
    assert.match(rule.maxItems.message, /3/);
    // Another trunk has its own count.
    await acl(t, await trunk(t, 'Second'), '8.50.0.4');
  });

  test('a real race: two tenants creating overlapping entries at once → exactly one 201 and one 409, never 5xx', async () => {
    const a = await h.account('Race A');
    const b = await h.account('Race B');
    const ta = await trunk(a);
    const tb = await trunk(b);
    let wins = { a: 0, b: 0 };
    for (let round = 0; round < 25; round++) {
      const block = `9.${round}.0.0/24`;
      const nested = `9.${round}.0.${round + 1}`;
      const [ra, rb] = await Promise.all([addAcl(a, ta, { ip_address: round % 2 ? block : nested }), addAcl(b, tb, { ip_address: round % 2 ? nested : block })]);
      const codes = [ra.statusCode, rb.statusCode].sort();
      assert.deepEqual(codes, [201, 409], `round ${round}: ${ra.body} / ${rb.body}`);
      if (ra.statusCode === 201) wins.a++;
      else wins.b++;
      const winner = ra.statusCode === 201 ? a : b;
      assert.equal((await lookup(nested)).json().data.account_id, winner.id);
      // Keep each trunk under its limit of 3.
      const [winnerTrunk, response] = ra.statusCode === 201 ? [ta, ra] : [tb, rb];
      await h.request('DELETE', `/v2/accounts/${winner.id}/trunks/${winnerTrunk}/ip_acls/${response.json().data.id}`, { token: winner.token });
    }
    assert.equal(wins.a + wins.b, 25);
  });
});
