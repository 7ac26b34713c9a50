// The audit trail (api.md §2): every change recorded under the account whose data changed, with
// the actor and before/after, newest first, paged; and no secret anywhere in it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { credentialsOf } from '../../src/services/passwords.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(() => h.close());

async function ok(method: string, url: string, token: string, body?: unknown) {
  const response = await h.request(method, url, { token, body });
  assert.ok(response.statusCode < 300, `${method} ${url}: ${response.body}`);
  return response.json();
}

async function trail(accountId: string, token = h.master.token, query = 'page_size=1000') {
  const response = await h.request('GET', `/v2/accounts/${accountId}/audit?${query}`, { token });
  assert.equal(response.statusCode, 200, response.body);
  return response.json().data as any[];
}

const whoami = async (token: string) => (await ok('GET', '/v2/token_auth', token)).data as { account_id: string; owner_id?: string };

test('every kind of change is recorded, with the actor and before/after, newest first', async () => {
  const t = await h.account('Audited');
  const me = await whoami(t.token);
  const base = `/v2/accounts/${t.id}`;

  const user = (await ok('PUT', `${base}/users`, t.token, { data: { username: 'carol', password: 'carolpw', priv_level: 'user' } })).data;
  await ok('PATCH', `${base}/users/${user.id}`, t.token, { data: { priv_level: 'admin' } });
  const device = (await ok('PUT', `${base}/devices`, t.token, { data: { name: 'Desk', sip: { username: 'desk', password: 'sippw' } } })).data;
  await ok('PATCH', `${base}/devices/${device.id}`, t.token, { data: { name: 'Desk 2' } });
  await ok('POST', `${base}/access_lists`, t.token, { data: { order: 'allow,deny', cidrs: ['192.0.2.0/24'] } });
  await ok('POST', `${base}/access_lists`, t.token, { data: { order: 'deny,allow', cidrs: [] } });
  await ok('POST', `${base}/devices/${device.id}/access_lists`, t.token, { data: { order: 'allow,deny', cidrs: ['192.0.2.1'] } });
  await ok('DELETE', `${base}/access_lists`, t.token);
  const trunk = (await ok('PUT', `${base}/trunks`, t.token, { data: { name: 'T' } })).data;
  await ok('PATCH', `${base}/trunks/${trunk.id}`, t.token, { data: { name: 'T2' } });
  const entry = (await ok('PUT', `${base}/trunks/${trunk.id}/ip_acls`, t.token, { data: { ip_address: '203.0.113.50', description: 'Office' } })).data;
  await ok('PATCH', `${base}/trunks/${trunk.id}/ip_acls/${entry.id}`, t.token, { data: { enabled: false } });
  await ok('DELETE', `${base}/trunks/${trunk.id}/ip_acls/${entry.id}`, t.token);
  await ok('PUT', '/v2/ips', h.master.token, { data: { ip: '45.0.0.1', zone: 'z', host: 'h' } });
  await ok('POST', `${base}/ips/45.0.0.1`, t.token);
  await ok('DELETE', `${base}/ips/45.0.0.1`, t.token);
  await ok('DELETE', `${base}/trunks/${trunk.id}`, t.token);
  await ok('DELETE', `${base}/devices/${device.id}`, t.token);
  await ok('DELETE', `${base}/users/${user.id}`, t.token);
  await ok('PATCH', base, t.token, { data: { name: 'Audited 2' } });

  const entries = (await trail(t.id)).filter((e) => e.actor.account_id === t.id);
  const seen = entries.map((e) => `${e.resource} ${e.action} ${e.resource_id}`).reverse();
  assert.deepEqual(seen, [
    `user_auth login ${me.owner_id}`,
    `users create ${user.id}`,
    `users update ${user.id}`,
    `devices create ${device.id}`,
    `devices update ${device.id}`,
    `access_lists create ${t.id}`,
    `access_lists update ${t.id}`,
    `access_lists create ${device.id}`,
    `access_lists delete ${t.id}`,
    `trunks create ${trunk.id}`,
    `trunks update ${trunk.id}`,
    `ip_acls create ${entry.id}`,
    `ip_acls update ${entry.id}`,
    `ip_acls delete ${entry.id}`,
    `ips update 45.0.0.1`,
    `ips update 45.0.0.1`,
    `trunks delete ${trunk.id}`,
    `devices delete ${device.id}`,
    `users delete ${user.id}`,
    `accounts update ${t.id}`,
  ]);
  for (const e of entries) {
    assert.deepEqual(Object.keys(e.actor).sort(), ['account_id', 'user_id']);
    assert.equal(e.actor.user_id, me.owner_id);
    assert.equal(e.account_id, t.id);
    assert.match(e.id, /^[0-9a-f-]{32,36}$/);
    assert.ok(!Number.isNaN(Date.parse(e.timestamp)));
  }
  // Newest first.
  const times = entries.map((e) => Date.parse(e.timestamp));
  assert.deepEqual(times, [...times].sort((a, b) => b - a));

  const byKey = (key: string) => entries.find((e) => `${e.resource} ${e.action} ${e.resource_id}` === key)!;
  assert.equal(byKey(`users update ${user.id}`).before.priv_level, 'user');
  assert.equal(byKey(`users update ${user.id}`).after.priv_level, 'admin');
  assert.equal(byKey(`devices update ${device.id}`).before.name, 'Desk');
  assert.equal(byKey(`devices update ${device.id}`).after.name, 'Desk 2');
  assert.deepEqual(byKey(`access_lists update ${t.id}`).before, { order: 'allow,deny', cidrs: ['192.0.2.0/24'] });
  assert.deepEqual(byKey(`access_lists update ${t.id}`).after, { order: 'deny,allow', cidrs: [] });
  assert.deepEqual(byKey(`access_lists delete ${t.id}`).before, { order: 'deny,allow', cidrs: [] });
  assert.equal(byKey(`access_lists delete ${t.id}`).after, undefined);
  assert.equal(byKey(`access_lists create ${t.id}`).before, undefined);
  assert.equal(byKey(`ip_acls create ${entry.id}`).after.ip_address, '203.0.113.50');
  assert.equal(byKey(`ip_acls update ${entry.id}`).before.enabled, true);
  assert.equal(byKey(`ip_acls update ${entry.id}`).after.enabled, false);
  assert.equal(byKey(`ip_acls delete ${entry.id}`).before.id, entry.id);
  assert.equal(byKey(`trunks update ${trunk.id}`).after.name, 'T2');
  assert.equal(byKey(`accounts update ${t.id}`).after.name, 'Audited 2');
  const ips = entries.filter((e) => e.resource === 'ips');
  assert.deepEqual(ips.map((e) => e.after.status), ['available', 'assigned']);

  // The account's own creation is in its trail, by the master.
  const creation = (await trail(t.id)).find((e) => e.resource === 'accounts' && e.action === 'create');
  assert.equal(creation.resource_id, t.id);
  assert.equal(creation.actor.account_id, h.master.id);

  // ?resource= filters.
  const onlyTrunks = await trail(t.id, t.token, 'resource=trunks');
  assert.deepEqual(onlyTrunks.map((e) => e.action), ['delete', 'update', 'create']);
  assert.ok(onlyTrunks.every((e) => e.resource === 'trunks'));
  assert.deepEqual(await trail(t.id, t.token, 'resource=nothing'), []);
});

test('a parent changing a child\'s list is recorded under the child, with the parent as actor; account deletion under the parent', async () => {
  const parent = await h.account('Audit Parent');
  const child = await h.account('Audit Child', { parentId: parent.id, token: parent.token });
  const parentUser = await whoami(parent.token);
  await ok('POST', `/v2/accounts/${child.id}/access_lists`, parent.token, { data: { order: 'allow,deny', cidrs: ['198.51.100.0/24'] } });
  const childTrail = await trail(child.id, child.token);
  const entry = childTrail.find((e) => e.resource === 'access_lists');
  assert.ok(entry, JSON.stringify(childTrail));
  assert.equal(entry.account_id, child.id);
  assert.equal(entry.resource_id, child.id);
  assert.deepEqual(entry.actor, { account_id: parent.id, user_id: parentUser.owner_id });
  assert.equal((await trail(parent.id, parent.token)).filter((e) => e.resource === 'access_lists').length, 0);
  // The child cannot read the parent's trail; another tenant cannot read the child's.
  assert.equal((await h.request('GET', `/v2/accounts/${parent.id}/audit`, { token: child.token })).statusCode, 403);
  const other = await h.account('Audit Other');
  assert.equal((await h.request('GET', `/v2/accounts/${child.id}/audit`, { token: other.token })).statusCode, 403);

  const grandchild = await h.account('Audit Grandchild', { parentId: child.id, token: parent.token });
  await ok('DELETE', `/v2/accounts/${grandchild.id}`, parent.token);
  const deletion = (await trail(child.id)).find((e) => e.resource === 'accounts' && e.action === 'delete');
  assert.equal(deletion?.resource_id, grandchild.id);
  assert.equal(deletion?.before.id, grandchild.id);
});

test('an API key actor is recorded as api_key: true', async () => {
  const t = await h.account('Audit Key');
  const key = (await ok('GET', `/v2/accounts/${t.id}/api_key`, t.token)).data.api_key as string;
  const login = await h.request('PUT', '/v2/api_auth', { body: { data: { api_key: key } } });
  assert.equal(login.statusCode, 201);
  const token = login.json().auth_token;
  await ok('PUT', `/v2/accounts/${t.id}/trunks`, token, { data: { name: 'By key' } });
  const entry = (await trail(t.id)).find((e) => e.resource === 'trunks');
  assert.deepEqual(entry.actor, { account_id: t.id, api_key: true });
});

test('paging: 50 a page by default, page_size and start_key, newest first without overlap', async () => {
  const t = await h.account('Audit Paging');
  for (let i = 0; i < 60; i++) await ok('PATCH', `/v2/accounts/${t.id}`, t.token, { data: { name: `Name ${i}` } });
  const all = await trail(t.id);
  assert.ok(all.length >= 61);
  const first = await h.request('GET', `/v2/accounts/${t.id}/audit`, { token: t.token });
  const firstBody = first.json();
  assert.equal(firstBody.data.length, 50);
  assert.equal(firstBody.page_size, 50);
  assert.deepEqual(firstBody.data.map((e: any) => e.id), all.slice(0, 50).map((e) => e.id));
  assert.equal(firstBody.data[0].after.name, 'Name 59');
  assert.ok(firstBody.next_start_key !== undefined);

  const collected: string[] = [];
  let startKey: unknown;
  let pages = 0;
  do {
    const query = `page_size=7${startKey === undefined ? '' : `&start_key=${startKey}`}`;
    const page = (await h.request('GET', `/v2/accounts/${t.id}/audit?${query}`, { token: t.token })).json();
    assert.ok(page.data.length <= 7);
    if (startKey !== undefined) assert.equal(String(page.start_key), String(startKey));
    collected.push(...page.data.map((e: any) => e.id));
    startKey = page.next_start_key;
    pages++;
  } while (startKey !== undefined && pages < 50);
  assert.deepEqual(collected, all.map((e) => e.id));
  assert.equal(pages, Math.ceil(all.length / 7));
});

test('secrets never appear in the audit trail', async () => {
  const t = await h.account('Audit Secrets');
  const base = `/v2/accounts/${t.id}`;
  const password = 'Sup3r-Secret-Passw0rd';
  const user = (await ok('PUT', `${base}/users`, t.token, { data: { username: 'dave', password, priv_level: 'admin' } })).data;
  const md5 = credentialsOf('dave', password);
  const login = await h.request('PUT', '/v2/user_auth', { body: { data: { credentials: md5, account_realm: t.realm } } });
  assert.equal(login.statusCode, 201);
  const token = login.json().auth_token as string;
  const newPassword = 'An0ther-Secret-Passw0rd';
  await ok('PATCH', `${base}/users/${user.id}`, token, { data: { password: newPassword } });
  await ok('POST', `${base}/users/${user.id}`, token, { data: { username: 'dave', password: newPassword, priv_level: 'admin', first_name: 'Dave' } });
  const sipPassword = 'SipSecret-9f8e7d';
  const device = (await ok('PUT', `${base}/devices`, token, { data: { name: 'Phone', sip: { username: 'phone', password: sipPassword } } })).data;
  await ok('PATCH', `${base}/devices/${device.id}`, token, { data: { name: 'Phone 2' } });
  await ok('POST', `${base}/devices/${device.id}`, token, { data: { name: 'Phone 3', sip: { username: 'phone', password: `${sipPassword}-2` } } });
  await ok('DELETE', `${base}/devices/${device.id}`, token);
  const apiKey = (await ok('GET', `${base}/api_key`, token)).data.api_key as string;
  const keyToken = (await h.request('PUT', '/v2/api_auth', { body: { data: { api_key: apiKey } } })).json().auth_token as string;
  await ok('PATCH', base, keyToken, { data: { name: 'Secrets 2' } });
  const child = await h.account('Audit Secrets Child', { parentId: t.id, token });
  await ok('DELETE', `/v2/accounts/${child.id}/users/${(await whoami(child.token)).owner_id}`, token);
  await ok('DELETE', `/v2/accounts/${child.id}`, token);
  await ok('DELETE', `${base}/users/${user.id}`, h.master.token);

  const secrets = [password, newPassword, md5, credentialsOf('dave', newPassword), token, keyToken, apiKey, sipPassword, `${sipPassword}-2`, h.master.token, t.token, child.token, 'pw'];
  const trails = [...(await trail(t.id)), ...(await trail(h.master.id))];
  assert.ok(trails.length > 10);
  const text = JSON.stringify(trails);
  for (const secret of secrets) {
    assert.ok(!text.includes(secret === 'pw' ? '"pw"' : secret), `a secret is in the audit trail: ${secret.slice(0, 8)}…`);
  }
  for (const entry of trails) {
    for (const doc of [entry.before, entry.after]) {
      if (!doc) continue;
      assert.equal(doc.password, undefined);
      assert.equal(doc.api_key, undefined);
      assert.equal(doc.sip?.password, undefined);
    }
  }
});

test('pool changes (API and CLI), API key reads and rotations, logins and logouts are recorded, without a secret', async () => {
  const { SYSTEM_ACTOR } = await import('../../src/services/actor.ts');
  const pool = await import('../../src/services/ips.ts');
  const masterUser = (await whoami(h.master.token)).owner_id!;
  const newest = async (accountId: string, n: number) => (await trail(accountId, h.master.token, `page_size=${n}`)).map((e) => ({ key: `${e.resource} ${e.action} ${e.resource_id}`, ...e }));

  // The pool is the system's: recorded under the master account, by API or by the CLI's services.
  await ok('PUT', '/v2/ips', h.master.token, { data: { ip: '45.0.9.1', zone: 'z', host: 'h' } });
  await ok('POST', '/v2/ips/45.0.9.1', h.master.token, { data: { zone: 'z2' } });
  await ok('DELETE', '/v2/ips/45.0.9.1', h.master.token);
  await pool.addPoolIp(h.services.ctx, SYSTEM_ACTOR, { ip: '45.0.9.2', zone: 'z', host: 'h' });
  await pool.importPoolIps(h.services.ctx, SYSTEM_ACTOR, [{ line: 1, ip: '45.0.9.3', zone: 'z', host: 'h' }]);
  await pool.deletePoolIp(h.services.ctx, SYSTEM_ACTOR, '45.0.9.2');
  const poolEntries = await newest(h.master.id, 6);
  assert.deepEqual(poolEntries.map((e) => e.key).reverse(), ['ips create 45.0.9.1', 'ips update 45.0.9.1', 'ips delete 45.0.9.1', 'ips create 45.0.9.2', 'ips create 45.0.9.3', 'ips delete 45.0.9.2']);
  const [cliDelete, , , apiDelete, apiUpdate, apiCreate] = poolEntries;
  assert.deepEqual(apiCreate!.actor, { account_id: h.master.id, user_id: masterUser });
  assert.equal(apiCreate!.after.status, 'available');
  assert.deepEqual([apiUpdate!.before.zone, apiUpdate!.after.zone], ['z', 'z2']);
  assert.equal(apiDelete!.before.ip, '45.0.9.1');
  assert.equal(apiDelete!.after, undefined);
  assert.deepEqual(cliDelete!.actor, { account_id: 'system' });

  // Logins, API key reads and rotations, logouts: under the account, with the source, never the secret.
  const t = await h.account('Audit Access');
  const user = await h.user(t.id, t.realm, 'admin', t.token);
  const key = (await ok('GET', `/v2/accounts/${t.id}/api_key`, user.token)).data.api_key as string;
  const keyLogin = await h.request('PUT', '/v2/api_auth', { body: { data: { api_key: key } } });
  const keyToken = keyLogin.json().auth_token as string;
  const rotated = (await h.request('PUT', `/v2/accounts/${t.id}/api_key`, { token: user.token })).json().data.api_key as string;
  await ok('DELETE', '/v2/token_auth', user.token);
  const access = await newest(t.id, 5);
  assert.deepEqual(access.map((e) => e.key).reverse(), [`user_auth login ${user.id}`, `api_key read ${t.id}`, `api_auth login ${t.id}`, `api_key update ${t.id}`, `token_auth logout ${user.id}`]);
  const [logout, rotation, apiLogin, read, login] = access;
  for (const e of [login, read, rotation, logout]) assert.deepEqual(e!.actor, { account_id: t.id, user_id: user.id });
  assert.deepEqual(apiLogin!.actor, { account_id: t.id, api_key: true });
  assert.deepEqual(login!.after, { method: 'cb_user_auth', source: '127.0.0.1' });
  assert.deepEqual(apiLogin!.after, { method: 'cb_api_auth', source: '127.0.0.1' });
  for (const e of [read, rotation, logout]) assert.equal(e!.before ?? e!.after, undefined);
  const text = JSON.stringify(await trail(t.id));
  for (const secret of [key, rotated, keyToken, user.token, t.token]) assert.ok(!text.includes(secret), `a secret is in the audit trail: ${secret.slice(0, 8)}…`);
});
