// Issue 2, api.md §2: accounts and their hierarchy, the API key, and the authorisation matrix over
// the account endpoints.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError, ok } from '../support/responses.ts';
import { TestClock } from '../support/clock.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
/** The authenticator's: moved past the token cache's second instead of waiting it out. */
const clock = new TestClock('running');
before(async () => {
  h = await startHarness({}, { clock: clock.now });
});
after(() => h.close());

let realmCounter = 0;
const freshRealm = (stem: string) => `${stem}${++realmCounter}.accounts.test`;

describe('accounts', () => {
  test('PUT /v2/accounts/{PARENT} creates a child: 201, Location, 32-hex id, parent_id, revision', async () => {
    const parent = await h.account('Parent');
    const realm = freshRealm('child');
    const response = await h.request('PUT', `/v2/accounts/${parent.id}`, { token: parent.token, body: { data: { name: 'Child One', realm } } });
    const body = ok(response, 201);
    assert.match(body.data.id, /^[0-9a-f]{32}$/);
    assert.equal(response.headers.location, `/v2/accounts/${body.data.id}`);
    assert.equal(body.data.parent_id, parent.id);
    assert.equal(body.data.name, 'Child One');
    assert.equal(body.data.realm, realm);
    assert.equal(body.data.superduper_admin, false);
    assert.equal(body.revision, response.headers.etag);
    const read = ok(await h.request('GET', `/v2/accounts/${body.data.id}`, { token: parent.token }));
    assert.deepEqual(read.data, body.data);
  });

  test('realms are lowercased and unique (400 unique on realm)', async () => {
    const realm = freshRealm('dup');
    const first = ok(await h.request('PUT', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: { data: { name: 'A', realm: realm.toUpperCase() } } }), 201);
    assert.equal(first.data.realm, realm);
    const dup = assertError(await h.request('PUT', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: { data: { name: 'B', realm } } }), 400, 'validation error');
    assert.ok(dup.data.realm.unique, JSON.stringify(dup.data));
    // Renaming another account's realm onto it is refused too.
    const other = await h.account('Other');
    const rename = assertError(await h.request('PATCH', `/v2/accounts/${other.id}`, { token: other.token, body: { data: { realm } } }), 400, 'validation error');
    assert.ok(rename.data.realm.unique);
  });

  test('a create without name or realm: 400 naming every missing field', async () => {
    const body = assertError(await h.request('PUT', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: { data: {} } }), 400, 'validation error');
    assert.ok(body.data.name.required);
    assert.ok(body.data.realm.required);
    const bad = assertError(await h.request('PUT', `/v2/accounts/${h.master.id}`, { token: h.master.token, body: { data: { name: 'x', realm: 'bad realm!' } } }), 400, 'validation error');
    assert.ok(bad.data.realm.pattern);
  });

  test('unknown fields are kept; server-owned fields never set by a body; ui_metadata ignored', async () => {
    const parent = await h.account('Owner');
    const realm = freshRealm('extra');
    const evil = 'e'.repeat(32);
    const created = ok(
      await h.request('PUT', `/v2/accounts/${parent.id}`, {
        token: parent.token,
        body: { accept_charges: true, data: { name: 'Extra', realm, timezone: 'Europe/Paris', custom: { nested: [1, 2] }, id: evil, parent_id: evil, superduper_admin: true, ui_metadata: { ui: 'monster' } } },
      }),
      201,
    );
    assert.notEqual(created.data.id, evil);
    assert.equal(created.data.parent_id, parent.id);
    assert.equal(created.data.superduper_admin, false);
    assert.equal(created.data.timezone, 'Europe/Paris');
    assert.deepEqual(created.data.custom, { nested: [1, 2] });
    assert.equal(created.data.ui_metadata, undefined);
    const id = created.data.id;
    // POST replaces: unknown fields not given are gone, server-owned fields still untouchable.
    const replaced = ok(await h.request('POST', `/v2/accounts/${id}`, { token: parent.token, body: { data: { name: 'Extra Two', realm, language: 'fr-fr', superduper_admin: true, parent_id: evil, id: evil } } }));
    assert.equal(replaced.data.id, id);
    assert.equal(replaced.data.name, 'Extra Two');
    assert.equal(replaced.data.language, 'fr-fr');
    assert.equal(replaced.data.timezone, undefined);
    assert.equal(replaced.data.superduper_admin, false);
    assert.equal(replaced.data.parent_id, parent.id);
    // PATCH merges.
    const patched = ok(await h.request('PATCH', `/v2/accounts/${id}`, { token: parent.token, body: { data: { timezone: 'UTC', superduper_admin: true } } }));
    assert.equal(patched.data.name, 'Extra Two');
    assert.equal(patched.data.language, 'fr-fr');
    assert.equal(patched.data.timezone, 'UTC');
    assert.equal(patched.data.superduper_admin, false);
    const read = ok(await h.request('GET', `/v2/accounts/${id}`, { token: parent.token }));
    assert.deepEqual(read.data, patched.data);
    // The child still cannot act as a superduper.
    const login = await h.request('PUT', `/v2/accounts/${id}/users`, { token: parent.token, body: { data: { username: 'boss', password: 'pw', priv_level: 'admin' } } });
    ok(login, 201);
    const token = await h.login('boss', 'pw', realm);
    assertError(await h.request('GET', '/v2/ips', { token }), 403, 'forbidden');
  });

  test('POST requires name and realm; PATCH validates the merged document', async () => {
    const a = await h.account('Strict');
    const body = assertError(await h.request('POST', `/v2/accounts/${a.id}`, { token: a.token, body: { data: { name: 'only name' } } }), 400, 'validation error');
    assert.ok(body.data.realm.required);
    const patch = assertError(await h.request('PATCH', `/v2/accounts/${a.id}`, { token: a.token, body: { data: { name: '' } } }), 400, 'validation error');
    assert.ok(patch.data.name.minLength);
  });

  test('children and descendants', async () => {
    const top = await h.account('Top');
    const mid = await h.account('Mid', { parentId: top.id, token: top.token });
    const leaf = await h.account('Leaf', { parentId: mid.id, token: mid.token });
    const children = ok(await h.request('GET', `/v2/accounts/${top.id}/children`, { token: top.token }));
    assert.deepEqual(children.data.map((a: { id: string }) => a.id), [mid.id]);
    const descendants = ok(await h.request('GET', `/v2/accounts/${top.id}/descendants`, { token: top.token }));
    assert.deepEqual(descendants.data.map((a: { id: string }) => a.id).sort(), [mid.id, leaf.id].sort());
    const leafRead = ok(await h.request('GET', `/v2/accounts/${leaf.id}`, { token: top.token }));
    assert.equal(leafRead.data.parent_id, mid.id);
    assert.deepEqual(ok(await h.request('GET', `/v2/accounts/${leaf.id}/children`, { token: leaf.token })).data, []);
    // A descendant cannot see its ancestors.
    assertError(await h.request('GET', `/v2/accounts/${top.id}`, { token: leaf.token }), 403, 'forbidden');
    assertError(await h.request('GET', `/v2/accounts/${top.id}/descendants`, { token: mid.token }), 403, 'forbidden');
  });

  test('delete with children → 409 account_has_descendants; leaf first then parent', async () => {
    const top = await h.account('Doomed');
    const child = await h.account('DoomedChild', { parentId: top.id, token: top.token });
    const refused = assertError(await h.request('DELETE', `/v2/accounts/${top.id}`, { token: h.master.token }), 409, 'account_has_descendants');
    assert.equal(refused.data.message, 'account_has_descendants');
    const deleted = ok(await h.request('DELETE', `/v2/accounts/${child.id}`, { token: top.token }));
    assert.equal(deleted.data.id, child.id);
    assertError(await h.request('GET', `/v2/accounts/${child.id}`, { token: top.token }), 404, 'bad_identifier', { cause: child.id, message: 'bad identifier' });
    ok(await h.request('DELETE', `/v2/accounts/${top.id}`, { token: h.master.token }));
    assertError(await h.request('GET', `/v2/accounts/${top.id}`, { token: h.master.token }), 404, 'bad_identifier');
    // Its tokens stop working (the account is gone) once the token cache's second is over.
    clock.advance(1000);
    assertError(await h.request('GET', '/v2/token_auth', { token: top.token }), 401, 'invalid_credentials');
  });

  test('deleting an account releases its dedicated IPs', async () => {
    const a = await h.account('IpHolder');
    ok(await h.request('PUT', '/v2/ips', { token: h.master.token, body: { data: { ip: '192.0.2.77', zone: 'z', host: 'h' } } }), 201);
    ok(await h.request('POST', `/v2/accounts/${a.id}/ips/192.0.2.77`, { token: a.token }));
    assert.equal(ok(await h.request('GET', '/v2/ips/192.0.2.77', { token: h.master.token })).data.assigned_to, a.id);
    ok(await h.request('DELETE', `/v2/accounts/${a.id}`, { token: h.master.token }));
    const after = ok(await h.request('GET', '/v2/ips/192.0.2.77', { token: h.master.token }));
    assert.equal(after.data.status, 'available');
    assert.equal(after.data.assigned_to, undefined);
  });

  test('api_key: readable by the account admin and its ancestors, not by a user nor another tenant', async () => {
    const top = await h.account('KeyTop');
    const child = await h.account('KeyChild', { parentId: top.id, token: top.token });
    const stranger = await h.account('Stranger');
    const user = await h.user(child.id, child.realm, 'user', child.token);
    const own = ok(await h.request('GET', `/v2/accounts/${child.id}/api_key`, { token: child.token }));
    assert.match(own.data.api_key, /^[0-9a-f]{64}$/);
    assert.deepEqual(Object.keys(own.data), ['api_key']);
    assert.equal(ok(await h.request('GET', `/v2/accounts/${child.id}/api_key`, { token: top.token })).data.api_key, own.data.api_key);
    assert.equal(ok(await h.request('GET', `/v2/accounts/${child.id}/api_key`, { token: h.master.token })).data.api_key, own.data.api_key);
    assertError(await h.request('GET', `/v2/accounts/${child.id}/api_key`, { token: user.token }), 403, 'forbidden');
    assertError(await h.request('GET', `/v2/accounts/${child.id}/api_key`, { token: stranger.token }), 403, 'forbidden');
    assertError(await h.request('GET', `/v2/accounts/${top.id}/api_key`, { token: child.token }), 403, 'forbidden');
    // Keys differ per account, and never appear in the account document.
    const topKey = ok(await h.request('GET', `/v2/accounts/${top.id}/api_key`, { token: top.token })).data.api_key;
    assert.notEqual(topKey, own.data.api_key);
    const doc = await h.request('GET', `/v2/accounts/${child.id}`, { token: child.token });
    assert.ok(!doc.body.includes(own.data.api_key));
  });

  test('unknown ids: 404 bad_identifier with the id as cause', async () => {
    const missing = '0'.repeat(32);
    for (const [method, url] of [
      ['GET', `/v2/accounts/${missing}`],
      ['PATCH', `/v2/accounts/${missing}`],
      ['POST', `/v2/accounts/${missing}`],
      ['DELETE', `/v2/accounts/${missing}`],
      ['PUT', `/v2/accounts/${missing}`],
      ['GET', `/v2/accounts/${missing}/children`],
      ['GET', `/v2/accounts/${missing}/descendants`],
      ['GET', `/v2/accounts/${missing}/api_key`],
    ] as const) {
      const body = method === 'GET' || method === 'DELETE' ? undefined : { data: { name: 'x', realm: freshRealm('missing') } };
      assertError(await h.request(method, url, { token: h.master.token, ...(body ? { body } : {}) }), 404, 'bad_identifier', { cause: missing, message: 'bad identifier' });
    }
  });
});

describe('authorisation matrix: accounts', () => {
  let owner: { id: string; token: string; realm: string };
  let parent: { id: string; token: string; realm: string };
  let stranger: { id: string; token: string; realm: string };
  let userToken: string;

  before(async () => {
    parent = await h.account('MatrixParent');
    owner = await h.account('MatrixOwner', { parentId: parent.id, token: parent.token });
    stranger = await h.account('MatrixStranger');
    userToken = (await h.user(owner.id, owner.realm, 'user', owner.token)).token;
  });

  const reads = (id: string) => [`/v2/accounts/${id}`, `/v2/accounts/${id}/children`, `/v2/accounts/${id}/descendants`];

  test('no token and a bad token: 401 everywhere', async () => {
    for (const url of [...reads(owner.id), `/v2/accounts/${owner.id}/api_key`]) {
      assertError(await h.request('GET', url), 401, 'invalid_credentials', { message: 'invalid credentials' });
      assertError(await h.request('GET', url, { token: 'bogus' }), 401, 'invalid_credentials');
    }
    for (const method of ['PUT', 'POST', 'PATCH', 'DELETE'] as const) {
      assertError(await h.request(method, `/v2/accounts/${owner.id}`, { body: { data: { name: 'x', realm: 'x.test' } } }), 401, 'invalid_credentials');
      assertError(await h.request(method, `/v2/accounts/${owner.id}`, { token: 'bogus', body: { data: { name: 'x', realm: 'x.test' } } }), 401, 'invalid_credentials');
    }
  });

  test("another tenant's admin: 403 on every read and write", async () => {
    for (const url of reads(owner.id)) assertError(await h.request('GET', url, { token: stranger.token }), 403, 'forbidden', { message: 'forbidden' });
    assertError(await h.request('PUT', `/v2/accounts/${owner.id}`, { token: stranger.token, body: { data: { name: 'x', realm: freshRealm('s') } } }), 403, 'forbidden');
    assertError(await h.request('POST', `/v2/accounts/${owner.id}`, { token: stranger.token, body: { data: { name: 'x', realm: owner.realm } } }), 403, 'forbidden');
    assertError(await h.request('PATCH', `/v2/accounts/${owner.id}`, { token: stranger.token, body: { data: { name: 'x' } } }), 403, 'forbidden');
    assertError(await h.request('DELETE', `/v2/accounts/${owner.id}`, { token: stranger.token }), 403, 'forbidden');
  });

  test('a user: reads allowed, writes 403', async () => {
    for (const url of reads(owner.id)) ok(await h.request('GET', url, { token: userToken }));
    assertError(await h.request('PUT', `/v2/accounts/${owner.id}`, { token: userToken, body: { data: { name: 'x', realm: freshRealm('u') } } }), 403, 'forbidden');
    assertError(await h.request('POST', `/v2/accounts/${owner.id}`, { token: userToken, body: { data: { name: 'x', realm: owner.realm } } }), 403, 'forbidden');
    assertError(await h.request('PATCH', `/v2/accounts/${owner.id}`, { token: userToken, body: { data: { name: 'x' } } }), 403, 'forbidden');
    assertError(await h.request('DELETE', `/v2/accounts/${owner.id}`, { token: userToken }), 403, 'forbidden');
  });

  test("the owner's admin, the parent's admin and the superduper are allowed", async () => {
    for (const token of [owner.token, parent.token, h.master.token]) {
      for (const url of reads(owner.id)) ok(await h.request('GET', url, { token }));
      ok(await h.request('PATCH', `/v2/accounts/${owner.id}`, { token, body: { data: { touched_by: token.slice(-6) } } }));
      const child = ok(await h.request('PUT', `/v2/accounts/${owner.id}`, { token, body: { data: { name: 'Sub', realm: freshRealm('sub') } } }), 201);
      ok(await h.request('DELETE', `/v2/accounts/${child.data.id}`, { token }));
    }
  });
});
