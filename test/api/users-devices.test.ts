// Issue 2, api.md §2: users (write-only password, privilege levels, unique usernames) and devices
// (unique sip.username per account, enabled by default, access_lists kept or applied), with the
// authorisation matrix over both.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentialsOf } from '../../src/services/passwords.ts';
import { assertError, ok, type Response } from '../support/responses.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(() => h.close());

const noPassword = (response: Response, secret: string) => {
  assert.ok(!/"password"/.test(response.body), `no password key in ${response.body}`);
  assert.ok(!response.body.includes(secret), 'the password itself never comes back');
  assert.ok(!response.body.includes(credentialsOf('x', secret)));
};

describe('users', () => {
  test('create 201 + Location, read, list, replace, merge, delete; the password never returned', async () => {
    const a = await h.account('Users');
    const secret = 'S3cret-Pass-Phrase';
    const created = await h.request('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, body: { data: { username: 'Alice', password: secret, priv_level: 'user', first_name: 'Alice', ui_metadata: { x: 1 } } } });
    noPassword(created, secret);
    const user = ok(created, 201).data;
    assert.match(user.id, /^[0-9a-f]{32}$/);
    assert.equal(created.headers.location, `/v2/accounts/${a.id}/users/${user.id}`);
    assert.equal(user.username, 'alice');
    assert.equal(user.priv_level, 'user');
    assert.equal(user.first_name, 'Alice');
    assert.equal(user.ui_metadata, undefined);

    const read = await h.request('GET', `/v2/accounts/${a.id}/users/${user.id}`, { token: a.token });
    noPassword(read, secret);
    assert.deepEqual(ok(read).data, user);
    const list = await h.request('GET', `/v2/accounts/${a.id}/users`, { token: a.token });
    noPassword(list, secret);
    assert.ok(ok(list).data.some((u: { id: string }) => u.id === user.id));

    // The user logs in with md5(lowercased username:password).
    const token = await h.login('alice', secret, a.realm);
    assert.ok(token);

    const merged = await h.request('PATCH', `/v2/accounts/${a.id}/users/${user.id}`, { token: a.token, body: { data: { last_name: 'Liddell' } } });
    noPassword(merged, secret);
    assert.equal(ok(merged).data.first_name, 'Alice');
    assert.equal(ok(merged).data.last_name, 'Liddell');

    // POST of the fetched document (no password): the password is kept, unknown fields replaced.
    const doc = ok(await h.request('GET', `/v2/accounts/${a.id}/users/${user.id}`, { token: a.token })).data;
    const replaced = await h.request('POST', `/v2/accounts/${a.id}/users/${user.id}`, { token: a.token, body: { data: { ...doc, first_name: undefined, email: 'a@example.com', id: 'f'.repeat(32) } } });
    noPassword(replaced, secret);
    const r = ok(replaced).data;
    assert.equal(r.id, user.id);
    assert.equal(r.email, 'a@example.com');
    assert.equal(r.first_name, undefined);
    assert.ok(await h.login('alice', secret, a.realm));

    // A new password works and the old one does not.
    const changed = await h.request('PATCH', `/v2/accounts/${a.id}/users/${user.id}`, { token: a.token, body: { data: { password: 'new-one' } } });
    noPassword(changed, 'new-one');
    ok(changed);
    await assert.rejects(h.login('alice', secret, a.realm));
    assert.ok(await h.login('alice', 'new-one', a.realm));

    const deleted = await h.request('DELETE', `/v2/accounts/${a.id}/users/${user.id}`, { token: a.token });
    noPassword(deleted, 'new-one');
    assert.equal(ok(deleted).data.id, user.id);
    assertError(await h.request('GET', `/v2/accounts/${a.id}/users/${user.id}`, { token: a.token }), 404, 'bad_identifier', { cause: user.id, message: 'bad identifier' });
    await assert.rejects(h.login('alice', 'new-one', a.realm));
  });

  test('username unique within the account (400 unique), free across accounts', async () => {
    const a = await h.account('UniqueUsers');
    const b = await h.account('OtherUsers');
    ok(await h.request('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, body: { data: { username: 'bob', password: 'x' } } }), 201);
    const dup = assertError(await h.request('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, body: { data: { username: 'BOB', password: 'y' } } }), 400, 'validation error');
    assert.ok(dup.data.username.unique, JSON.stringify(dup.data));
    ok(await h.request('PUT', `/v2/accounts/${b.id}/users`, { token: b.token, body: { data: { username: 'bob', password: 'x' } } }), 201);
    // Renaming onto a taken username is refused too.
    const carol = ok(await h.request('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, body: { data: { username: 'carol', password: 'x' } } }), 201).data;
    const rename = assertError(await h.request('PATCH', `/v2/accounts/${a.id}/users/${carol.id}`, { token: a.token, body: { data: { username: 'bob', password: 'z' } } }), 400, 'validation error');
    assert.ok(rename.data.username.unique);
  });

  test('validation: missing username and password, bad priv_level, all at once', async () => {
    const a = await h.account('BadUsers');
    const body = assertError(await h.request('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, body: { data: { priv_level: 'root' } } }), 400, 'validation error');
    assert.ok(body.data.username.required);
    assert.ok(body.data.priv_level.enum, JSON.stringify(body.data));
    const noPw = assertError(await h.request('PUT', `/v2/accounts/${a.id}/users`, { token: a.token, body: { data: { username: 'nopw' } } }), 400, 'validation error');
    assert.ok(noPw.data.password.required);
  });

  test('a user-level user may read but every write is 403', async () => {
    const a = await h.account('ReadOnly');
    const reader = await h.user(a.id, a.realm, 'user', a.token);
    ok(await h.request('GET', `/v2/accounts/${a.id}/users`, { token: reader.token }));
    ok(await h.request('GET', `/v2/accounts/${a.id}/users/${reader.id}`, { token: reader.token }));
    assertError(await h.request('PUT', `/v2/accounts/${a.id}/users`, { token: reader.token, body: { data: { username: 'sneaky', password: 'x', priv_level: 'admin' } } }), 403, 'forbidden');
    assertError(await h.request('PATCH', `/v2/accounts/${a.id}/users/${reader.id}`, { token: reader.token, body: { data: { priv_level: 'admin' } } }), 403, 'forbidden');
    assertError(await h.request('POST', `/v2/accounts/${a.id}/users/${reader.id}`, { token: reader.token, body: { data: { username: 'x', priv_level: 'admin' } } }), 403, 'forbidden');
    assertError(await h.request('DELETE', `/v2/accounts/${a.id}/users/${reader.id}`, { token: reader.token }), 403, 'forbidden');
    const still = ok(await h.request('GET', `/v2/accounts/${a.id}/users/${reader.id}`, { token: a.token })).data;
    assert.equal(still.priv_level, 'user');
  });
});

describe('devices', () => {
  test('create 201 + Location, enabled defaults true, unknown fields kept, server-owned ignored', async () => {
    const a = await h.account('Devices');
    const created = await h.request('PUT', `/v2/accounts/${a.id}/devices`, {
      token: a.token,
      body: { data: { name: 'Desk phone', sip: { username: 'desk100', password: 'sip-secret', realm: a.realm }, device_type: 'sip_device', id: 'f'.repeat(32), ui_metadata: { v: 1 } } },
    });
    const device = ok(created, 201).data;
    assert.match(device.id, /^[0-9a-f]{32}$/);
    assert.notEqual(device.id, 'f'.repeat(32));
    assert.equal(created.headers.location, `/v2/accounts/${a.id}/devices/${device.id}`);
    assert.equal(device.enabled, true);
    assert.equal(device.device_type, 'sip_device');
    assert.equal(device.sip.username, 'desk100');
    assert.equal(device.sip.realm, a.realm);
    assert.equal(device.ui_metadata, undefined);
    assert.equal(device.access_lists, undefined);
    assert.deepEqual(ok(await h.request('GET', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token })).data, device);
    const list = ok(await h.request('GET', `/v2/accounts/${a.id}/devices`, { token: a.token })).data;
    assert.deepEqual(list.map((d: { id: string }) => d.id), [device.id]);

    const disabled = ok(await h.request('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, body: { data: { name: 'Off', sip: { username: 'off1' }, enabled: false } } }), 201).data;
    assert.equal(disabled.enabled, false);

    const patched = ok(await h.request('PATCH', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token, body: { data: { name: 'Desk phone 2' } } })).data;
    assert.equal(patched.name, 'Desk phone 2');
    assert.equal(patched.device_type, 'sip_device');
    assert.equal(patched.sip.username, 'desk100');

    const replaced = ok(await h.request('POST', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token, body: { data: { name: 'Replaced', sip: { username: 'desk101' } } } })).data;
    assert.equal(replaced.device_type, undefined);
    assert.equal(replaced.sip.username, 'desk101');
    assert.equal(replaced.enabled, true);

    ok(await h.request('DELETE', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token }));
    assertError(await h.request('GET', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token }), 404, 'bad_identifier', { cause: device.id, message: 'bad identifier' });
  });

  test('sip.username unique within the account (400 unique on sip.username), free across accounts', async () => {
    const a = await h.account('SipUnique');
    const b = await h.account('SipOther');
    ok(await h.request('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, body: { data: { name: 'one', sip: { username: 'same' } } } }), 201);
    const dup = assertError(await h.request('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, body: { data: { name: 'two', sip: { username: 'same' } } } }), 400, 'validation error');
    assert.ok(dup.data['sip.username'].unique, JSON.stringify(dup.data));
    ok(await h.request('PUT', `/v2/accounts/${b.id}/devices`, { token: b.token, body: { data: { name: 'one', sip: { username: 'same' } } } }), 201);
    const other = ok(await h.request('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, body: { data: { name: 'three', sip: { username: 'different' } } } }), 201).data;
    const rename = assertError(await h.request('PATCH', `/v2/accounts/${a.id}/devices/${other.id}`, { token: a.token, body: { data: { sip: { username: 'same' } } } }), 400, 'validation error');
    assert.ok(rename.data['sip.username'].unique);
  });

  test('validation: name and sip.username required, all at once', async () => {
    const a = await h.account('BadDevices');
    const body = assertError(await h.request('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, body: { data: { enabled: 'yes' } } }), 400, 'validation error');
    assert.ok(body.data.name.required, JSON.stringify(body.data));
    assert.ok(body.data.sip.required);
    assert.ok(body.data.enabled.type);
  });

  test('access_lists in a device body are validated and applied; updates without them keep them', async () => {
    const a = await h.account('DeviceAcl');
    const list = { order: 'allow,deny', cidrs: ['192.0.2.0/24', '2001:db8::/32'] };
    const device = ok(await h.request('PUT', `/v2/accounts/${a.id}/devices`, { token: a.token, body: { data: { name: 'acl', sip: { username: 'acl1' }, access_lists: list } } }), 201).data;
    assert.deepEqual(device.access_lists.order, 'allow,deny');
    assert.deepEqual(device.access_lists.cidrs, list.cidrs);
    const fromList = ok(await h.request('GET', `/v2/accounts/${a.id}/devices/${device.id}/access_lists`, { token: a.token })).data;
    assert.deepEqual(fromList.cidrs, list.cidrs);

    // An update without access_lists keeps them (PATCH and POST alike).
    const patched = ok(await h.request('PATCH', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token, body: { data: { name: 'renamed' } } })).data;
    assert.deepEqual(patched.access_lists.cidrs, list.cidrs);
    const posted = ok(await h.request('POST', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token, body: { data: { name: 'posted', sip: { username: 'acl1' } } } })).data;
    assert.deepEqual(posted.access_lists.cidrs, list.cidrs);
    assert.deepEqual(ok(await h.request('GET', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token })).data.access_lists.cidrs, list.cidrs);

    // Monster UI posts back the fetched document with a changed list: applied.
    const fetched = ok(await h.request('GET', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token })).data;
    const changed = ok(await h.request('POST', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token, body: { data: { ...fetched, access_lists: { order: 'deny,allow', cidrs: ['198.51.100.7'] } } } })).data;
    assert.equal(changed.access_lists.order, 'deny,allow');
    assert.deepEqual(changed.access_lists.cidrs, ['198.51.100.7']);
    const check = ok(await h.request('GET', `/v2/accounts/${a.id}/access_lists/check?ip=198.51.100.7&device_id=${device.id}`, { token: a.token })).data;
    assert.equal(check.device.decision, 'deny');

    // Invalid lists are refused with the field named, and nothing changes.
    const bad = assertError(
      await h.request('PATCH', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token, body: { data: { access_lists: { order: 'sideways', cidrs: ['10.0.0.1/24', 'nope'] } } } }),
      400,
      'validation error',
    );
    assert.ok(bad.data['access_lists.order']?.enum, JSON.stringify(bad.data));
    const badCidr = assertError(
      await h.request('PATCH', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token, body: { data: { access_lists: { order: 'allow,deny', cidrs: ['10.0.0.1/24', 'nope'] } } } }),
      400,
      'validation error',
    );
    assert.ok(badCidr.data['access_lists.cidrs.0'], JSON.stringify(badCidr.data));
    assert.ok(badCidr.data['access_lists.cidrs.1']);
    assert.match(JSON.stringify(badCidr.data['access_lists.cidrs.0']), /10\.0\.0\.0\/24/);
    assert.deepEqual(ok(await h.request('GET', `/v2/accounts/${a.id}/devices/${device.id}`, { token: a.token })).data.access_lists.cidrs, ['198.51.100.7']);
  });
});

describe('authorisation matrix: users and devices', () => {
  let parent: { id: string; token: string; realm: string };
  let owner: { id: string; token: string; realm: string };
  let stranger: { id: string; token: string; realm: string };
  let reader: { id: string; token: string };
  let userId: string;
  let deviceId: string;
  let n = 0;

  before(async () => {
    parent = await h.account('UdParent');
    owner = await h.account('UdOwner', { parentId: parent.id, token: parent.token });
    stranger = await h.account('UdStranger');
    reader = await h.user(owner.id, owner.realm, 'user', owner.token);
    userId = ok(await h.request('PUT', `/v2/accounts/${owner.id}/users`, { token: owner.token, body: { data: { username: 'target', password: 'x' } } }), 201).data.id;
    deviceId = ok(await h.request('PUT', `/v2/accounts/${owner.id}/devices`, { token: owner.token, body: { data: { name: 'target', sip: { username: 'target' } } } }), 201).data.id;
  });

  const reads = () => [`/v2/accounts/${owner.id}/users`, `/v2/accounts/${owner.id}/users/${userId}`, `/v2/accounts/${owner.id}/devices`, `/v2/accounts/${owner.id}/devices/${deviceId}`];
  const writes = (): [string, string, unknown][] => [
    ['PUT', `/v2/accounts/${owner.id}/users`, { data: { username: `new${++n}`, password: 'x' } }],
    ['PATCH', `/v2/accounts/${owner.id}/users/${userId}`, { data: { note: `n${++n}` } }],
    ['POST', `/v2/accounts/${owner.id}/users/${userId}`, { data: { username: 'target', note: `n${++n}` } }],
    ['PUT', `/v2/accounts/${owner.id}/devices`, { data: { name: 'd', sip: { username: `d${++n}` } } }],
    ['PATCH', `/v2/accounts/${owner.id}/devices/${deviceId}`, { data: { note: `n${++n}` } }],
    ['POST', `/v2/accounts/${owner.id}/devices/${deviceId}`, { data: { name: 'target', sip: { username: 'target' } } }],
  ];

  test('no token and a bad token: 401', async () => {
    for (const url of reads()) {
      assertError(await h.request('GET', url), 401, 'invalid_credentials', { message: 'invalid credentials' });
      assertError(await h.request('GET', url, { token: 'bogus.token.value' }), 401, 'invalid_credentials');
    }
    for (const [method, url, body] of writes()) {
      assertError(await h.request(method, url, { body }), 401, 'invalid_credentials');
      assertError(await h.request(method, url, { token: 'bogus', body }), 401, 'invalid_credentials');
    }
    assertError(await h.request('DELETE', `/v2/accounts/${owner.id}/users/${userId}`), 401, 'invalid_credentials');
    assertError(await h.request('DELETE', `/v2/accounts/${owner.id}/devices/${deviceId}`), 401, 'invalid_credentials');
  });

  test("another tenant's admin: 403 on reads and writes", async () => {
    for (const url of reads()) assertError(await h.request('GET', url, { token: stranger.token }), 403, 'forbidden', { message: 'forbidden' });
    for (const [method, url, body] of writes()) assertError(await h.request(method, url, { token: stranger.token, body }), 403, 'forbidden');
    assertError(await h.request('DELETE', `/v2/accounts/${owner.id}/users/${userId}`, { token: stranger.token }), 403, 'forbidden');
    assertError(await h.request('DELETE', `/v2/accounts/${owner.id}/devices/${deviceId}`, { token: stranger.token }), 403, 'forbidden');
  });

  test("a stranger cannot reach another account's user or device through its own account", async () => {
    assertError(await h.request('GET', `/v2/accounts/${stranger.id}/users/${userId}`, { token: stranger.token }), 404, 'bad_identifier', { cause: userId, message: 'bad identifier' });
    assertError(await h.request('GET', `/v2/accounts/${stranger.id}/devices/${deviceId}`, { token: stranger.token }), 404, 'bad_identifier');
    assertError(await h.request('PATCH', `/v2/accounts/${stranger.id}/devices/${deviceId}`, { token: stranger.token, body: { data: { name: 'x' } } }), 404, 'bad_identifier');
    assertError(await h.request('DELETE', `/v2/accounts/${stranger.id}/users/${userId}`, { token: stranger.token }), 404, 'bad_identifier');
  });

  test('a user: reads allowed, writes 403', async () => {
    for (const url of reads()) ok(await h.request('GET', url, { token: reader.token }));
    for (const [method, url, body] of writes()) assertError(await h.request(method, url, { token: reader.token, body }), 403, 'forbidden');
    assertError(await h.request('DELETE', `/v2/accounts/${owner.id}/devices/${deviceId}`, { token: reader.token }), 403, 'forbidden');
  });

  test("the owner's admin, the parent's admin and the superduper are allowed", async () => {
    for (const token of [owner.token, parent.token, h.master.token]) {
      for (const url of reads()) ok(await h.request('GET', url, { token }));
      for (const [method, url, body] of writes()) assert.ok([200, 201].includes((await h.request(method, url, { token, body })).statusCode), `${method} ${url}`);
    }
    // A user of the parent account may read its descendants' users but not write them.
    const parentReader = await h.user(parent.id, parent.realm, 'user', parent.token);
    ok(await h.request('GET', `/v2/accounts/${owner.id}/devices/${deviceId}`, { token: parentReader.token }));
    assertError(await h.request('PATCH', `/v2/accounts/${owner.id}/devices/${deviceId}`, { token: parentReader.token, body: { data: { x: 1 } } }), 403, 'forbidden');
  });

  test('unknown ids: 404 bad_identifier', async () => {
    const missing = '1'.repeat(32);
    for (const url of [`/v2/accounts/${owner.id}/users/${missing}`, `/v2/accounts/${owner.id}/devices/${missing}`]) {
      assertError(await h.request('GET', url, { token: owner.token }), 404, 'bad_identifier', { cause: missing, message: 'bad identifier' });
      assertError(await h.request('PATCH', url, { token: owner.token, body: { data: { name: 'x' } } }), 404, 'bad_identifier');
      assertError(await h.request('DELETE', url, { token: owner.token }), 404, 'bad_identifier');
    }
    assertError(await h.request('GET', `/v2/accounts/${missing}/users`, { token: h.master.token }), 404, 'bad_identifier', { cause: missing, message: 'bad identifier' });
    assertError(await h.request('PUT', `/v2/accounts/${missing}/devices`, { token: h.master.token, body: { data: { name: 'x', sip: { username: 'x' } } } }), 404, 'bad_identifier');
  });
});
