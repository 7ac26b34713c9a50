// Issue 23: a trunk's entries created all or nothing in one request (an array `data` on
// PUT .../trunks/{T}/ip_acls), problems under `N.field`; and every trunk change reaching the
// live index as that change, named in the change feed by its block.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError, ok } from '../support/responses.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { freshSchema, unreachable } from '../support/postgres.ts';

const FLAGS = { maxIpAclsPerTrunk: '5' };

/** The harness the suite's tests run on: set by its `before`, closed by its `after`. */
let h: Harness;
function onHarness(open: () => Promise<{ harness: Harness; cleanup(): Promise<void> }>): void {
  let cleanup: () => Promise<void>;
  before(async () => {
    const opened = await open();
    h = opened.harness;
    cleanup = opened.cleanup;
  });
  after(() => cleanup());
}

async function onSqlite() {
  const harness = await startHarness(FLAGS);
  return { harness, cleanup: () => harness.close() };
}

/** A fresh schema of the test database: the bulk's transaction then runs in PostgreSQL's aside worker. */
async function onPostgres() {
  const schema = await freshSchema();
  const harness = await startHarness({ ...FLAGS, databaseUrl: schema.url });
  return {
    harness,
    async cleanup() {
      await harness.close();
      await schema.drop();
    },
  };
}

type Tenant = { id: string; token: string };

async function trunk(t: Tenant) {
  const created = await h.request('PUT', `/v2/accounts/${t.id}/trunks`, { token: t.token, body: { data: { name: 'Bulk' } } });
  assert.equal(created.statusCode, 201, created.body);
  return created.json().data.id as string;
}

const bulk = (t: Tenant, trunkId: string, data: unknown) => h.request('PUT', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls`, { token: t.token, body: { data } });
const listed = async (t: Tenant, trunkId: string) => (await h.request('GET', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls`, { token: t.token })).json().data as { ip_address: string }[];
const lookup = async (ip: string) => {
  const found = await h.request('GET', `/v2/ip_acls/lookup?ip=${encodeURIComponent(ip)}`, { token: h.master.token });
  return found.statusCode === 200 ? (found.json().data as { trunk_id: string; ip_acl_id: string }) : null;
};

function bulkCreate(store: string, open: typeof onSqlite, skip?: string): void {
  describe(`bulk create of trunk IP ACL entries (${store})`, skip === undefined ? {} : { skip }, () => {
    onHarness(open);

    test('an array creates every entry: 201 with the seed objects, each one live at once', async () => {
      const t = await h.account('Bulk Ok');
      const trunkId = await trunk(t);
      const body = ok(await bulk(t, trunkId, [{ ip_address: '203.0.113.10', description: 'one' }, { ip_address: '2001:db8:10::/48' }, { ip_address: '198.51.100.0/28', enabled: false }]), 201);
      assert.deepEqual(body.data.map((e: { ip_address: string; trunk_id: string; enabled: boolean }) => [e.ip_address, e.trunk_id, e.enabled]), [
        ['203.0.113.10', trunkId, true],
        ['2001:db8:10::/48', trunkId, true],
        ['198.51.100.0/28', trunkId, false],
      ]);
      assert.equal((await lookup('203.0.113.10'))?.ip_acl_id, body.data[0].id);
      assert.equal((await lookup('2001:db8:10::99'))?.ip_acl_id, body.data[1].id);
      assert.equal(await lookup('198.51.100.1'), null, 'a disabled entry authenticates nothing');
      const audit = (await h.request('GET', `/v2/accounts/${t.id}/audit?resource=ip_acls`, { token: t.token })).json().data as { resource_id: string }[];
      assert.deepEqual(audit.map((a) => a.resource_id).sort(), body.data.map((e: { id: string }) => e.id).sort(), 'one audit entry per created entry');
    });

    test('every problem at once under N.field, and nothing created', async () => {
      const t = await h.account('Bulk Bad');
      const trunkId = await trunk(t);
      const response = await bulk(t, trunkId, [{ ip_address: '203.0.113.20' }, { ip_address: '10.0.0.1' }, { ip_address: '203.0.113.21', description: 7 }, { description: 'no address' }]);
      const body = assertError(response, 400, 'validation error');
      assert.deepEqual(Object.keys(body.data).sort(), ['1.ip_address', '2.description', '3.ip_address']);
      assert.ok(body.data['1.ip_address'].forbidden, JSON.stringify(body.data));
      assert.ok(body.data['2.description'].type, JSON.stringify(body.data));
      assert.ok(body.data['3.ip_address'].required, JSON.stringify(body.data));
      assert.deepEqual(await listed(t, trunkId), []);
      assert.equal(await lookup('203.0.113.20'), null);
    });

    test('at most the per-trunk limit, counting the entries already there', async () => {
      const t = await h.account('Bulk Limit');
      const trunkId = await trunk(t);
      const six = Array.from({ length: 6 }, (_, i) => ({ ip_address: `203.0.113.${100 + i}` }));
      assert.ok(assertError(await bulk(t, trunkId, six), 400, 'validation error').data.data.maxItems);
      ok(await bulk(t, trunkId, six.slice(0, 3)), 201);
      assert.ok(assertError(await bulk(t, trunkId, six.slice(3)), 400, 'validation error').data.ip_acls.maxItems);
      assert.equal((await listed(t, trunkId)).length, 3);
    });

    test("an item overlapping another account's active block: 409 naming the item, nothing created", async () => {
      const owner = await h.account('Bulk Owner');
      ok(await bulk(owner, await trunk(owner), [{ ip_address: '198.51.100.64/26' }]), 201);
      const t = await h.account('Bulk Thief');
      const trunkId = await trunk(t);
      const body = assertError(await bulk(t, trunkId, [{ ip_address: '203.0.113.30' }, { ip_address: '198.51.100.70' }]), 409, 'datastore_conflict');
      assert.match(String(body.data.cause), /^1\.ip_address/);
      assert.deepEqual(await listed(t, trunkId), []);
      assert.equal(await lookup('203.0.113.30'), null);
    });

    test('the same block twice in one account (another trunk): 409', async () => {
      const t = await h.account('Bulk Twice');
      ok(await bulk(t, await trunk(t), [{ ip_address: '192.0.2.0/29' }]), 201);
      assertError(await bulk(t, await trunk(t), [{ ip_address: '192.0.2.0/29' }]), 409, 'datastore_conflict');
    });
  });
}

bulkCreate('sqlite', onSqlite);
const pgUnavailable = await unreachable();
if (pgUnavailable && process.env.CI === 'true') test('PostgreSQL is reachable (required under CI)', () => assert.fail(pgUnavailable));
bulkCreate('postgres', onPostgres, pgUnavailable ?? undefined);

describe('trunk changes reach the index as themselves', () => {
  onHarness(onSqlite);

  test('the change feed names the blocks; enable, disable and delete of entries and trunks apply block by block', async () => {
    const t = await h.account('Feed');
    const trunkId = await trunk(t);
    const created = ok(await bulk(t, trunkId, [{ ip_address: '192.0.2.64/26' }, { ip_address: '192.0.2.70' }]), 201).data as { id: string }[];
    const read = h.services.ctx.store.read;
    const last = await read.lastChangeId();
    const recent = await read.changesSince(last - 2);
    assert.deepEqual(recent.map((c) => [c.kind, c.subject]), [
      ['trunk_block', '4:c0000240/26'],
      ['trunk_block', '4:c0000246/32'],
    ]);
    assert.equal((await lookup('192.0.2.70'))?.ip_acl_id, created[1]!.id);
    ok(await h.request('PATCH', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${created[1]!.id}`, { token: t.token, body: { data: { enabled: false } } }));
    assert.equal((await lookup('192.0.2.70'))?.ip_acl_id, created[0]!.id, 'the enclosing block answers');
    ok(await h.request('PATCH', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${created[1]!.id}`, { token: t.token, body: { data: { ip_address: '192.0.2.71', enabled: true } } }));
    assert.equal((await lookup('192.0.2.70'))?.ip_acl_id, created[0]!.id, 'the old block is gone');
    assert.equal((await lookup('192.0.2.71'))?.ip_acl_id, created[1]!.id, 'the new one is live');
    ok(await h.request('PATCH', `/v2/accounts/${t.id}/trunks/${trunkId}`, { token: t.token, body: { data: { enabled: false } } }));
    assert.equal(await lookup('192.0.2.71'), null, 'a disabled trunk authenticates nothing');
    ok(await h.request('PATCH', `/v2/accounts/${t.id}/trunks/${trunkId}`, { token: t.token, body: { data: { enabled: true } } }));
    assert.equal((await lookup('192.0.2.71'))?.ip_acl_id, created[1]!.id);
    ok(await h.request('DELETE', `/v2/accounts/${t.id}/trunks/${trunkId}/ip_acls/${created[0]!.id}`, { token: t.token }));
    assert.equal(await lookup('192.0.2.72'), null);
    ok(await h.request('DELETE', `/v2/accounts/${t.id}/trunks/${trunkId}`, { token: t.token }));
    assert.equal(await lookup('192.0.2.71'), null, 'a deleted trunk authenticates nothing');
    assert.ok(!(await read.changesSince(last)).some((c) => c.kind === 'trunks'), 'no full reload was asked for');
  });

  test("an account's deletion takes its trunks' blocks out", async () => {
    const t = await h.account('Leaving');
    ok(await bulk(t, await trunk(t), [{ ip_address: '198.51.100.200' }]), 201);
    assert.ok(await lookup('198.51.100.200'));
    ok(await h.request('DELETE', `/v2/accounts/${t.id}`, { token: h.master.token }));
    assert.equal(await lookup('198.51.100.200'), null);
  });
});
