// The Store contract, written against port.ts only: every adapter (SQLite, PostgreSQL) registers
// these tests with its own `open`. Each test opens a fresh, empty store and cleans it up.

import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { AccountRow, AuditRow, DeviceRow, IpAclRow, IpRow, Repository, Store, TrunkRow, UserRow } from '../../src/store/port.ts';
import { UniqueViolationError } from '../../src/store/port.ts';

export interface OpenedStore {
  store: Store;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** Registers every test as skipped, with this reason. */
  skip?: string;
}

const hexId = () => randomBytes(16).toString('hex');
const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();

function accountRow(overrides: Partial<AccountRow> = {}): AccountRow {
  const id = overrides.id ?? hexId();
  return {
    id,
    name: `Account ${id.slice(0, 6)}`,
    nameKey: `account${id.slice(0, 6)}`,
    realm: `${id.slice(0, 12)}.example.test`,
    parentId: null,
    path: `/${id}/`,
    superduper: false,
    apiKeyHash: randomBytes(32).toString('hex'),
    apiKeySealed: `v1.${randomBytes(8).toString('hex')}`,
    accessList: null,
    extra: {},
    revision: '1-a',
    created: at(0),
    modified: at(0),
    ...overrides,
  };
}

function childOf(parent: AccountRow, overrides: Partial<AccountRow> = {}): AccountRow {
  const id = overrides.id ?? hexId();
  return accountRow({ id, parentId: parent.id, path: `${parent.path}${id}/`, ...overrides });
}

function userRow(accountId: string, overrides: Partial<UserRow> = {}): UserRow {
  return { id: hexId(), accountId, username: `user-${hexId().slice(0, 6)}`, passwordHash: 'scrypt$x', loginTag: null, privLevel: 'admin', extra: {}, revision: '1-a', created: at(0), modified: at(0), ...overrides };
}

function deviceRow(accountId: string, overrides: Partial<DeviceRow> = {}): DeviceRow {
  return { id: hexId(), accountId, name: 'Desk phone', sipUsername: `sip-${hexId().slice(0, 6)}`, enabled: true, accessList: null, extra: {}, revision: '1-a', created: at(0), modified: at(0), ...overrides };
}

function ipRow(ip: string, overrides: Partial<IpRow> = {}): IpRow {
  return { ip, zone: 'us-east', host: 'proxy1', assignedTo: null, revision: '1-a', created: at(0), modified: at(0), ...overrides };
}

function trunkRow(accountId: string, overrides: Partial<TrunkRow> = {}): TrunkRow {
  return { id: randomUUID(), accountId, name: 'Trunk', enabled: true, revision: '1-a', created: at(0), modified: at(0), ...overrides };
}

/** An IPv4 entry over [lo, hi] given as numbers. */
function aclRow(trunk: TrunkRow, lo: number, hi: number, overrides: Partial<IpAclRow> = {}): IpAclRow {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  return {
    id: randomUUID(),
    trunkId: trunk.id,
    accountId: trunk.accountId,
    ipAddress: `block-${lo}-${hi}`,
    family: 4,
    rangeLo: hex(lo),
    rangeHi: hex(hi),
    prefix: 32 - Math.log2(hi - lo + 1),
    description: '',
    enabled: true,
    revision: '1-a',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    ...overrides,
  };
}

function auditRow(accountId: string, overrides: Partial<Omit<AuditRow, 'seq'>> = {}): Omit<AuditRow, 'seq'> {
  return { id: randomUUID(), timestamp: at(0), accountId, actor: { account_id: accountId }, action: 'create', resource: 'devices', resourceId: hexId(), before: null, after: { name: 'x' }, ...overrides };
}

async function seedAccount(store: Store, overrides: Partial<AccountRow> = {}): Promise<AccountRow> {
  const row = accountRow(overrides);
  await store.transaction((tx) => tx.insertAccount(row));
  return row;
}

const IP = (a: number, b: number, c: number, d: number) => ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;

export function contractSuite(name: string, open: () => Promise<OpenedStore>, options: ContractOptions = {}): void {
  const skip = options.skip;

  /** A test over a fresh store, cleaned up whatever happens. */
  const storeTest = (title: string, body: (store: Store) => Promise<void>) =>
    test(title, skip === undefined ? {} : { skip }, async () => {
      const { store, cleanup } = await open();
      try {
        await body(store);
      } finally {
        await cleanup();
      }
    });

  describe(`Store contract: ${name}`, () => {
    storeTest('ping answers', async (store) => {
      await store.ping();
    });

    storeTest('login attempts: listed per key (all sources or one) since a time, oldest first; deleted one by one or per key and source; pruned by age', async (store) => {
      await store.transaction(async (tx) => {
        await tx.insertLoginAttempt('t1', 'account:a', '192.0.2.1', '2026-01-01T00:00:02.000Z');
        await tx.insertLoginAttempt('t2', 'account:a', '192.0.2.1', '2026-01-01T00:00:01.000Z');
        await tx.insertLoginAttempt('t3', 'account:a', '192.0.2.2', '2026-01-01T00:00:04.000Z');
        await tx.insertLoginAttempt('t4', 'account:a', '192.0.2.1', '2025-12-31T23:00:00.000Z');
        await tx.insertLoginAttempt('t5', 'account:b', '192.0.2.1', '2026-01-01T00:00:03.000Z');
      });
      const r = store.read;
      const since = '2026-01-01T00:00:00.000Z';
      assert.deepEqual(await r.listLoginAttempts('account:a', since), ['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:04.000Z']);
      assert.deepEqual(await r.listLoginAttempts('account:a', since, '192.0.2.1'), ['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z']);
      await store.transaction((tx) => tx.pruneLoginAttempts(since));
      assert.deepEqual(await r.listLoginAttempts('account:a', '2000-01-01T00:00:00.000Z', '192.0.2.1'), ['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z']);
      await store.transaction((tx) => tx.deleteLoginAttempt('t2'));
      assert.deepEqual(await r.listLoginAttempts('account:a', since, '192.0.2.1'), ['2026-01-01T00:00:02.000Z']);
      await store.transaction((tx) => tx.deleteLoginAttempts('account:a', '192.0.2.1'));
      assert.deepEqual(await r.listLoginAttempts('account:a', since), ['2026-01-01T00:00:04.000Z']);
      assert.deepEqual(await r.listLoginAttempts('account:b', since), ['2026-01-01T00:00:03.000Z']);
    });

    storeTest('deployment values: absent until inserted, then read back; inserted once', async (store) => {
      assert.equal(await store.read.getDeploymentValue('probe'), undefined);
      await store.transaction((tx) => tx.insertDeploymentValue('probe', 'one'));
      assert.equal(await store.read.getDeploymentValue('probe'), 'one');
      await assert.rejects(store.transaction((tx) => tx.insertDeploymentValue('probe', 'two')), UniqueViolationError);
      assert.equal(await store.read.getDeploymentValue('probe'), 'one');
    });

    storeTest('accounts: create, read by id/realm/api key/name, hierarchy, update, delete', async (store) => {
      const root = accountRow({ superduper: true, name: 'Master', nameKey: 'master', accessList: { order: 'allow,deny', cidrs: ['10.0.0.0/8', '2001:db8::/32'] }, extra: { notes: 'kept', n: 3 } });
      const child = childOf(root, { name: 'Same', nameKey: 'same' });
      const grandchild = childOf(child, { name: 'Same', nameKey: 'same' });
      const other = accountRow();
      await store.transaction(async (tx) => {
        for (const row of [root, child, grandchild, other]) await tx.insertAccount(row);
      });
      const r = store.read;
      assert.deepEqual(await r.getAccount(root.id), root);
      assert.deepEqual(await r.getAccount(grandchild.id), grandchild);
      assert.equal(await r.getAccount(hexId()), undefined);
      assert.deepEqual(await r.getAccountByRealm(child.realm), child);
      assert.equal(await r.getAccountByRealm('missing.example.test'), undefined);
      assert.deepEqual(await r.getAccountByApiKeyHash(other.apiKeyHash), other);
      assert.deepEqual(await r.getMasterAccount(), root);
      await store.transaction((tx) => tx.setApiKey(other.id, 'f'.repeat(64), 'v1.sealed'));
      assert.equal(await r.getAccountByApiKeyHash(other.apiKeyHash), undefined);
      Object.assign(other, { apiKeyHash: 'f'.repeat(64), apiKeySealed: 'v1.sealed' });
      assert.deepEqual(await r.getAccountByApiKeyHash('f'.repeat(64)), other);
      assert.deepEqual((await r.findAccountsByNameKey('same')).map((a) => a.id), [child.id, grandchild.id].sort());
      assert.equal(await r.countAccounts(), 4);
      assert.deepEqual((await r.listAccounts()).map((a) => a.id), [root, child, grandchild, other].sort((a, b) => (a.path < b.path ? -1 : 1)).map((a) => a.id));
      assert.deepEqual((await r.listChildren(root.id)).map((a) => a.id), [child.id]);
      assert.deepEqual((await r.listDescendants(root.path)).map((a) => a.id), [child.id, grandchild.id]);
      assert.deepEqual(await r.listDescendants(grandchild.path), []);

      const updated: AccountRow = { ...child, name: 'Renamed', nameKey: 'renamed', realm: 'renamed.example.test', accessList: { order: 'deny,allow', cidrs: [], user_agent: '^Yealink' }, extra: { a: [1, 2] }, revision: '2-b', modified: at(5) };
      await store.transaction((tx) => tx.updateAccount(updated));
      assert.deepEqual(await r.getAccount(child.id), updated);
      assert.equal(await r.getAccountByRealm(child.realm), undefined);

      await store.transaction((tx) => tx.deleteAccount(other.id));
      assert.equal(await r.getAccount(other.id), undefined);
      assert.equal(await r.countAccounts(), 3);
    });

    storeTest('users: create, read, list, update, delete; deleted with their account', async (store) => {
      const account = await seedAccount(store);
      const alice = userRow(account.id, { username: 'alice', extra: { email: 'a@example.test' } });
      const bob = userRow(account.id, { username: 'bob', privLevel: 'user' });
      await store.transaction(async (tx) => {
        await tx.insertUser(alice);
        await tx.insertUser(bob);
      });
      assert.deepEqual(await store.read.getUser(alice.id), alice);
      assert.deepEqual(await store.read.getUserByUsername(account.id, 'bob'), bob);
      assert.equal(await store.read.getUserByUsername(account.id, 'carol'), undefined);
      assert.deepEqual((await store.read.listUsers(account.id)).map((u) => u.id), [alice.id, bob.id].sort());
      await store.transaction((tx) => tx.setLoginTag(alice.id, 'tag-a'));
      alice.loginTag = 'tag-a';
      assert.deepEqual(await store.read.listUsersByLoginTag('tag-a'), [alice]);
      assert.deepEqual(await store.read.listUsersByLoginTag('tag-b'), []);
      const changed: UserRow = { ...bob, username: 'robert', passwordHash: 'scrypt$y', loginTag: 'tag-b', privLevel: 'admin', revision: '2-c', modified: at(9) };
      await store.transaction((tx) => tx.updateUser(changed));
      assert.deepEqual(await store.read.getUser(bob.id), changed);
      await store.transaction((tx) => tx.deleteUser(alice.id));
      assert.equal(await store.read.getUser(alice.id), undefined);
      await store.transaction((tx) => tx.deleteAccount(account.id));
      assert.deepEqual(await store.read.listUsers(account.id), []);
    });

    storeTest('tokens: create, read, delete, expire', async (store) => {
      const account = await seedAccount(store);
      const live = { hash: 'h-live', accountId: account.id, ownerId: null, method: 'cb_api_auth', expiresAt: at(100), created: at(0) };
      const old = { hash: 'h-old', accountId: account.id, ownerId: hexId(), method: 'cb_user_auth', expiresAt: at(10), created: at(0) };
      await store.transaction(async (tx) => {
        await tx.insertToken(live);
        await tx.insertToken(old);
      });
      assert.deepEqual(await store.read.getToken('h-live'), live);
      assert.deepEqual(await store.read.getToken('h-old'), old);
      await store.transaction((tx) => tx.deleteExpiredTokens(at(50)));
      assert.equal(await store.read.getToken('h-old'), undefined);
      assert.deepEqual(await store.read.getToken('h-live'), live);
      await store.transaction((tx) => tx.deleteToken('h-live'));
      assert.equal(await store.read.getToken('h-live'), undefined);
      // A rotated API key ends the sessions it opened, not the users'.
      const keyed = { ...live, hash: 'h-key' };
      const user = { ...old, hash: 'h-user', expiresAt: at(100) };
      await store.transaction(async (tx) => {
        await tx.insertToken(keyed);
        await tx.insertToken(user);
        await tx.deleteApiKeyTokens(account.id);
      });
      assert.equal(await store.read.getToken('h-key'), undefined);
      assert.deepEqual(await store.read.getToken('h-user'), user);
    });

    storeTest('devices: create, read by id and SIP username, list, update, delete', async (store) => {
      const a = await seedAccount(store);
      const b = await seedAccount(store);
      const d1 = deviceRow(a.id, { sipUsername: 'phone1', accessList: { order: 'allow,deny', cidrs: ['192.0.2.0/24'] } });
      const d2 = deviceRow(a.id, { sipUsername: 'phone2', enabled: false });
      const d3 = deviceRow(b.id, { sipUsername: 'phone1', extra: { kept: true } });
      await store.transaction(async (tx) => {
        for (const d of [d1, d2, d3]) await tx.insertDevice(d);
      });
      assert.deepEqual(await store.read.getDevice(d2.id), d2);
      assert.deepEqual(await store.read.getDeviceBySipUsername(b.id, 'phone1'), d3);
      assert.deepEqual((await store.read.listDevices(a.id)).map((d) => d.id), [d1.id, d2.id].sort());
      const all = await store.read.listAllDevices();
      assert.deepEqual(
        all.map((d) => d.id),
        [d1, d2, d3].sort((x, y) => (x.accountId === y.accountId ? (x.id < y.id ? -1 : 1) : x.accountId < y.accountId ? -1 : 1)).map((d) => d.id),
      );
      const changed: DeviceRow = { ...d1, name: 'Renamed', sipUsername: 'phone9', enabled: false, accessList: null, revision: '2-d', modified: at(3) };
      await store.transaction((tx) => tx.updateDevice(changed));
      assert.deepEqual(await store.read.getDevice(d1.id), changed);
      await store.transaction((tx) => tx.deleteDevice(d2.id));
      assert.equal(await store.read.getDevice(d2.id), undefined);
    });

    storeTest('dedicated IPs: create, filter, update, conditional assign and release, delete', async (store) => {
      const a = await seedAccount(store);
      const b = await seedAccount(store);
      const rows = [ipRow('192.0.2.10'), ipRow('192.0.2.11', { zone: 'eu-west', host: 'proxy2' }), ipRow('2001:db8::1', { assignedTo: b.id })];
      await store.transaction(async (tx) => {
        for (const row of rows) await tx.insertIp(row);
      });
      assert.deepEqual(await store.read.getIp('2001:db8::1'), rows[2]);
      assert.deepEqual((await store.read.listIps({})).map((r) => r.ip), ['192.0.2.10', '192.0.2.11', '2001:db8::1']);
      assert.deepEqual((await store.read.listIps({ zone: 'eu-west' })).map((r) => r.ip), ['192.0.2.11']);
      assert.deepEqual((await store.read.listIps({ host: 'proxy1', status: 'available' })).map((r) => r.ip), ['192.0.2.10']);
      assert.deepEqual((await store.read.listIps({ status: 'assigned' })).map((r) => r.ip), ['2001:db8::1']);
      assert.deepEqual((await store.read.listIps({ assignedTo: b.id })).map((r) => r.ip), ['2001:db8::1']);

      assert.equal(await store.transaction((tx) => tx.assignIpIfAvailable('192.0.2.10', a.id, '2-x', at(1))), true);
      assert.equal(await store.transaction((tx) => tx.assignIpIfAvailable('192.0.2.10', b.id, '3-x', at(2))), false);
      assert.equal(await store.transaction((tx) => tx.assignIpIfAvailable('198.51.100.1', b.id, '3-x', at(2))), false);
      assert.deepEqual(await store.read.getIp('192.0.2.10'), { ...rows[0], assignedTo: a.id, revision: '2-x', modified: at(1) });
      assert.equal(await store.transaction((tx) => tx.releaseIpIfAssigned('192.0.2.10', b.id, '4-x', at(3))), false);
      assert.equal(await store.transaction((tx) => tx.releaseIpIfAssigned('192.0.2.10', a.id, '4-x', at(3))), true);
      assert.equal((await store.read.getIp('192.0.2.10'))?.assignedTo, null);

      await store.transaction((tx) => tx.updateIp({ ...rows[1]!, zone: 'ap-south', revision: '2-y' }));
      assert.equal((await store.read.getIp('192.0.2.11'))?.zone, 'ap-south');
      await store.transaction((tx) => tx.deleteIp('192.0.2.11'));
      assert.equal(await store.read.getIp('192.0.2.11'), undefined);
    });

    storeTest('trunks and IP ACL entries: CRUD, filters, counts, active set, trunk delete removes entries', async (store) => {
      const a = await seedAccount(store);
      const b = await seedAccount(store);
      const t1 = trunkRow(a.id, { name: 'one', created: at(1) });
      const t2 = trunkRow(a.id, { name: 'two', created: at(2), enabled: false });
      const t3 = trunkRow(b.id, { name: 'three' });
      const e1 = aclRow(t1, IP(203, 0, 113, 50), IP(203, 0, 113, 50), { description: 'pbx', createdAt: '2026-01-01T00:00:01Z' });
      const e2 = aclRow(t1, IP(198, 51, 100, 0), IP(198, 51, 100, 255), { enabled: false, createdAt: '2026-01-01T00:00:02Z' });
      const e3 = aclRow(t2, IP(192, 0, 2, 0), IP(192, 0, 2, 255));
      const e4 = aclRow(t3, IP(203, 0, 113, 0), IP(203, 0, 113, 127));
      await store.transaction(async (tx) => {
        for (const t of [t1, t2, t3]) await tx.insertTrunk(t);
        for (const e of [e1, e2, e3, e4]) await tx.insertIpAcl(e);
      });
      assert.deepEqual(await store.read.getTrunk(t2.id), t2);
      assert.deepEqual((await store.read.listTrunks(a.id)).map((t) => t.id), [t1.id, t2.id]);
      assert.deepEqual(await store.read.getIpAcl(e1.id), e1);
      assert.deepEqual((await store.read.listIpAcls({ trunkId: t1.id })).map((e) => e.id), [e1.id, e2.id]);
      assert.deepEqual(new Set((await store.read.listIpAcls({ accountId: a.id })).map((e) => e.id)), new Set([e1.id, e2.id, e3.id]));
      assert.equal((await store.read.listIpAcls({})).length, 4);
      assert.equal(await store.read.countIpAcls(t1.id), 2);
      assert.deepEqual((await store.read.listActiveIpAcls()).map((e) => e.id), [e1.id, e4.id].sort());
      assert.deepEqual(
        await store.read.listActiveIndexIpAcls(),
        (await store.read.listActiveIpAcls()).map(({ id, trunkId, accountId, ipAddress, family, rangeLo, prefix }) => ({ id, trunkId, accountId, ipAddress, family, rangeLo, prefix })),
      );

      const updated: IpAclRow = { ...e2, enabled: true, description: 'now on', revision: '2-e', updatedAt: '2026-01-02T00:00:00Z' };
      await store.transaction((tx) => tx.updateIpAcl(updated));
      assert.deepEqual(await store.read.getIpAcl(e2.id), updated);
      await store.transaction((tx) => tx.updateTrunk({ ...t2, enabled: true, name: 'two!', revision: '2-t' }));
      assert.equal((await store.read.getTrunk(t2.id))?.name, 'two!');
      assert.equal((await store.read.listActiveIpAcls()).length, 4);

      await store.transaction((tx) => tx.deleteIpAcl(e4.id));
      assert.equal(await store.read.getIpAcl(e4.id), undefined);
      await store.transaction((tx) => tx.deleteTrunk(t1.id));
      assert.equal(await store.read.getTrunk(t1.id), undefined);
      assert.equal(await store.read.getIpAcl(e1.id), undefined);
      assert.equal(await store.read.countIpAcls(t1.id), 0);
    });

    storeTest('findActiveOverlaps: range overlap, family, disabled entries and trunks excluded', async (store) => {
      const a = await seedAccount(store);
      const on = trunkRow(a.id);
      const off = trunkRow(a.id, { enabled: false });
      const block = aclRow(on, IP(203, 0, 113, 0), IP(203, 0, 113, 255));
      const host = aclRow(on, IP(198, 51, 100, 7), IP(198, 51, 100, 7));
      const disabled = aclRow(on, IP(203, 0, 113, 0), IP(203, 0, 113, 15), { enabled: false });
      const onOffTrunk = aclRow(off, IP(203, 0, 113, 16), IP(203, 0, 113, 31));
      const v6: IpAclRow = { ...aclRow(on, 0, 0), family: 6, rangeLo: '20010db8' + '0'.repeat(24), rangeHi: '20010db8' + 'f'.repeat(24), prefix: 32 };
      await store.transaction(async (tx) => {
        await tx.insertTrunk(on);
        await tx.insertTrunk(off);
        for (const e of [block, host, disabled, onOffTrunk, v6]) await tx.insertIpAcl(e);
      });
      const hex = (n: number) => n.toString(16).padStart(8, '0');
      const ids = async (lo: number, hi: number) => (await store.read.findActiveOverlaps(4, hex(lo), hex(hi))).map((e) => e.id).sort();
      assert.deepEqual(await ids(IP(203, 0, 113, 10), IP(203, 0, 113, 10)), [block.id]);
      assert.deepEqual(await ids(IP(203, 0, 112, 0), IP(203, 0, 113, 0)), [block.id], 'touching the first address');
      assert.deepEqual(await ids(IP(203, 0, 113, 255), IP(203, 0, 114, 0)), [block.id], 'touching the last address');
      assert.deepEqual(await ids(IP(203, 0, 114, 0), IP(203, 0, 114, 255)), []);
      assert.deepEqual(await ids(0, 0xffffffff), [block.id, host.id].sort());
      const found = await store.transaction((tx) => tx.findActiveOverlaps(4, hex(IP(198, 51, 100, 0)), hex(IP(198, 51, 100, 255))));
      assert.deepEqual(found.map((e) => ({ id: e.id, trunkEnabled: e.trunkEnabled })), [{ id: host.id, trunkEnabled: true }]);
      const six = await store.read.findActiveOverlaps(6, '20010db8' + '0'.repeat(16) + '00000001', '20010db8' + '0'.repeat(16) + '00000001');
      assert.deepEqual(six.map((e) => e.id), [v6.id]);
      assert.deepEqual(await store.read.findActiveOverlaps(6, '0'.repeat(32), '1'.repeat(32)), []);
    });

    storeTest('findActiveOverlaps: blocks nested several deep are found from either side; listActiveIpAclsStartingAt', async (store) => {
      const a = await seedAccount(store);
      const t = trunkRow(a.id);
      const wide = aclRow(t, IP(203, 0, 0, 0), IP(203, 0, 255, 255), { prefix: 16 });
      const mid = aclRow(t, IP(203, 0, 113, 0), IP(203, 0, 113, 255), { prefix: 24 });
      const host = aclRow(t, IP(203, 0, 113, 9), IP(203, 0, 113, 9), { prefix: 32 });
      const sibling = aclRow(t, IP(203, 0, 114, 0), IP(203, 0, 114, 127), { prefix: 25 });
      const v6wide: IpAclRow = { ...aclRow(t, 0, 0), family: 6, rangeLo: '20010db8' + '0'.repeat(24), rangeHi: '20010db8' + 'f'.repeat(24), prefix: 32 };
      const v6host: IpAclRow = { ...aclRow(t, 0, 0), family: 6, rangeLo: '20010db8' + '0'.repeat(16) + '00000005', rangeHi: '20010db8' + '0'.repeat(16) + '00000005', prefix: 128 };
      await store.transaction(async (tx) => {
        await tx.insertTrunk(t);
        for (const e of [wide, mid, host, sibling, v6wide, v6host]) await tx.insertIpAcl(e);
      });
      const hex = (n: number) => n.toString(16).padStart(8, '0');
      const ids = async (lo: number, hi: number) => (await store.read.findActiveOverlaps(4, hex(lo), hex(hi))).map((e) => e.id).sort();
      assert.deepEqual(await ids(IP(203, 0, 113, 9), IP(203, 0, 113, 9)), [wide.id, mid.id, host.id].sort(), 'every enclosing block of a host');
      assert.deepEqual(await ids(IP(203, 0, 113, 10), IP(203, 0, 113, 10)), [wide.id, mid.id].sort());
      assert.deepEqual(await ids(IP(203, 0, 113, 128), IP(203, 0, 114, 255)), [wide.id, mid.id, sibling.id].sort(), 'enclosing and inside');
      assert.deepEqual(await ids(IP(203, 0, 0, 0), IP(203, 0, 255, 255)), [wide.id, mid.id, host.id, sibling.id].sort());
      assert.deepEqual(await ids(IP(203, 1, 0, 0), IP(203, 1, 0, 0)), []);
      const many = await store.read.findActiveOverlapsAny(4, [
        { lo: hex(IP(203, 0, 113, 9)), hi: hex(IP(203, 0, 113, 9)) },
        { lo: hex(IP(203, 0, 114, 64)), hi: hex(IP(203, 0, 114, 64)) },
        { lo: hex(IP(198, 51, 100, 0)), hi: hex(IP(198, 51, 100, 255)) },
      ]);
      assert.deepEqual(many.map((e) => e.id).sort(), [wide.id, mid.id, host.id, sibling.id].sort(), 'the union over every range');
      const six = await store.read.findActiveOverlaps(6, v6host.rangeLo, v6host.rangeHi);
      assert.deepEqual(six.map((e) => e.id).sort(), [v6wide.id, v6host.id].sort());
      assert.deepEqual((await store.read.listActiveIpAclsStartingAt(4, [hex(IP(203, 0, 113, 0)), hex(IP(203, 0, 113, 9))])).map((e) => e.id).sort(), [mid.id, host.id].sort());
      const starts = Array.from({ length: 150 }, (_, i) => hex(IP(198, 51, 100, i)));
      assert.deepEqual((await store.read.listActiveIpAclsStartingAt(4, [...starts, hex(IP(203, 0, 0, 0))])).map((e) => e.id), [wide.id], 'past one query of starts');
      assert.deepEqual((await store.read.listActiveIpAclsStartingAt(6, [v6wide.rangeLo])).map((e) => e.id), [v6wide.id]);
    });

    storeTest('findActiveOverlapsAny: neighbouring ranges probed together find exactly what overlaps them, not what lies between', async (store) => {
      const a = await seedAccount(store);
      const t = trunkRow(a.id);
      const hex = (n: number) => n.toString(16).padStart(8, '0');
      // Stored: hosts between the queried ones (in the gaps), one host queried, a /28 holding a
      // queried host, a /30 starting inside a queried /29, and a /24 reaching the last queried host.
      const between = [IP(198, 51, 100, 3), IP(198, 51, 100, 20), IP(198, 51, 100, 62)].map((ip) => aclRow(t, ip, ip));
      const same = aclRow(t, IP(198, 51, 100, 10), IP(198, 51, 100, 10));
      const holder = aclRow(t, IP(198, 51, 100, 32), IP(198, 51, 100, 47), { prefix: 28 });
      const inside = aclRow(t, IP(198, 51, 100, 52), IP(198, 51, 100, 55), { prefix: 30 });
      const reaching = aclRow(t, IP(198, 51, 101, 0), IP(198, 51, 101, 255), { prefix: 24 });
      const far = aclRow(t, IP(198, 51, 103, 0), IP(198, 51, 103, 0));
      await store.transaction(async (tx) => {
        await tx.insertTrunk(t);
        for (const e of [...between, same, holder, inside, reaching, far]) await tx.insertIpAcl(e);
      });
      const host = (ip: number) => ({ lo: hex(ip), hi: hex(ip) });
      const ranges = [host(IP(198, 51, 100, 10)), host(IP(198, 51, 100, 2 * 20 + 1)), { lo: hex(IP(198, 51, 100, 48)), hi: hex(IP(198, 51, 100, 55)) }, host(IP(198, 51, 100, 0)), host(IP(198, 51, 101, 200))];
      const found = await store.read.findActiveOverlapsAny(4, ranges);
      assert.deepEqual(found.map((e) => e.id).sort(), [same.id, holder.id, inside.id, reaching.id].sort());
      // Nested ranges of one batch: the inner one does not hide a block the outer one overlaps.
      const nested = await store.read.findActiveOverlapsAny(4, [{ lo: hex(IP(198, 51, 100, 0)), hi: hex(IP(198, 51, 100, 63)) }, host(IP(198, 51, 100, 1))]);
      assert.deepEqual(nested.map((e) => e.id).sort(), [...between, same, holder, inside].map((e) => e.id).sort());
    });

    storeTest('transaction: commits its result, sees its own writes, hides them from readers until commit', async (store) => {
      const row = accountRow();
      const result = await store.transaction(async (tx) => {
        await tx.insertAccount(row);
        assert.deepEqual(await tx.getAccount(row.id), row, 'a transaction sees its own write');
        assert.equal(await store.read.getAccount(row.id), undefined, 'nobody else sees it before commit');
        await tx.recordChange('account', row.id, at(1));
        return 'done';
      });
      assert.equal(result, 'done');
      assert.deepEqual(await store.read.getAccount(row.id), row);
      assert.equal(await store.read.lastChangeId(), 1);
    });

    storeTest('transaction: a throw inside rolls every write back and rejects with that error', async (store) => {
      const kept = await seedAccount(store);
      const row = accountRow();
      const boom = new Error('boom');
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.insertAccount(row);
          await tx.insertUser(userRow(row.id));
          await tx.updateAccount({ ...kept, name: 'Changed' });
          await tx.insertIp(ipRow('192.0.2.1'));
          await tx.recordChange('account', row.id, at(1));
          await tx.insertAudit(auditRow(row.id));
          throw boom;
        }),
        (error) => error === boom,
      );
      assert.equal(await store.read.getAccount(row.id), undefined);
      assert.deepEqual(await store.read.listUsers(row.id), []);
      assert.equal((await store.read.getAccount(kept.id))?.name, kept.name);
      assert.equal(await store.read.getIp('192.0.2.1'), undefined);
      assert.equal(await store.read.lastChangeId(), 0);
      assert.deepEqual(await store.read.listAudit(row.id, { limit: 10 }), []);
      // The store is still usable afterwards.
      await seedAccount(store);
      assert.equal(await store.read.countAccounts(), 2);
    });

    storeTest('unique constraints refuse with UniqueViolationError and roll the transaction back', async (store) => {
      const a = await seedAccount(store);
      const cases: [string, (tx: Repository) => Promise<void>][] = [
        ['account id', (tx) => tx.insertAccount(accountRow({ id: a.id }))],
        ['realm', (tx) => tx.insertAccount(accountRow({ realm: a.realm }))],
        ['api key', (tx) => tx.insertAccount(accountRow({ apiKeyHash: a.apiKeyHash }))],
        ['realm on update', async (tx) => {
          const b = accountRow();
          await tx.insertAccount(b);
          await tx.updateAccount({ ...b, realm: a.realm });
        }],
      ];
      const user = userRow(a.id, { username: 'alice' });
      const device = deviceRow(a.id, { sipUsername: 'phone1' });
      await store.transaction(async (tx) => {
        await tx.insertUser(user);
        await tx.insertDevice(device);
        await tx.insertIp(ipRow('192.0.2.1'));
      });
      cases.push(
        ['username within an account', (tx) => tx.insertUser(userRow(a.id, { username: 'alice' }))],
        ['SIP username within an account', (tx) => tx.insertDevice(deviceRow(a.id, { sipUsername: 'phone1' }))],
        ['pool IP', (tx) => tx.insertIp(ipRow('192.0.2.1'))],
      );
      for (const [label, write] of cases) {
        const before = await store.read.countAccounts();
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.insertAccount(accountRow({ name: 'collateral' }));
            await write(tx);
          }),
          (error) => error instanceof UniqueViolationError,
          label,
        );
        assert.equal(await store.read.countAccounts(), before, `${label}: nothing written`);
      }
      // Not a violation: the same username in another account.
      const other = await seedAccount(store);
      await store.transaction((tx) => tx.insertUser(userRow(other.id, { username: 'alice' })));
    });

    storeTest('assignIpIfAvailable: many parallel transactions, exactly one winner', async (store) => {
      const accounts: AccountRow[] = [];
      for (let i = 0; i < 16; i++) accounts.push(await seedAccount(store));
      await store.transaction((tx) => tx.insertIp(ipRow('192.0.2.77')));
      const results = await Promise.all(accounts.map((a, i) => store.transaction((tx) => tx.assignIpIfAvailable('192.0.2.77', a.id, `${i + 2}-r`, at(i)))));
      assert.equal(results.filter(Boolean).length, 1, `winners: ${results.filter(Boolean).length}`);
      const winner = accounts[results.indexOf(true)]!;
      assert.equal((await store.read.getIp('192.0.2.77'))?.assignedTo, winner.id);
    });

    storeTest('all-or-nothing multi-IP assignment under concurrency: exactly one winner, no partial assignment', async (store) => {
      const accounts: AccountRow[] = [];
      for (let i = 0; i < 10; i++) accounts.push(await seedAccount(store));
      const ips = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'];
      await store.transaction(async (tx) => {
        for (const ip of ips) await tx.insertIp(ipRow(ip));
      });
      const outcomes = await Promise.allSettled(
        accounts.map((a) =>
          store.transaction(async (tx) => {
            // Different orders, so that a non-serialising adapter would interleave.
            for (const ip of a.id < '8' ? ips : [...ips].reverse()) {
              if (!(await tx.assignIpIfAvailable(ip, a.id, '2-m', at(1)))) throw new Error(`lost ${ip}`);
            }
          }),
        ),
      );
      const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [accounts[i]!.id] : []));
      assert.equal(winners.length, 1);
      for (const o of outcomes) if (o.status === 'rejected') assert.match(String(o.reason), /lost/);
      assert.deepEqual((await store.read.listIps({ assignedTo: winners[0]! })).map((r) => r.ip), ips);
    });

    storeTest('check-then-write across parallel transactions (the trunk overlap rule): exactly one wins', async (store) => {
      const accounts: AccountRow[] = [];
      for (let i = 0; i < 8; i++) accounts.push(await seedAccount(store));
      const trunks = accounts.map((a) => trunkRow(a.id));
      await store.transaction(async (tx) => {
        for (const t of trunks) await tx.insertTrunk(t);
      });
      const lo = IP(203, 0, 113, 0);
      const hi = IP(203, 0, 113, 255);
      const hex = (n: number) => n.toString(16).padStart(8, '0');
      const outcomes = await Promise.allSettled(
        trunks.map((t, i) =>
          store.transaction(async (tx) => {
            const overlaps = await tx.findActiveOverlaps(4, hex(lo + i), hex(lo + i));
            if (overlaps.some((o) => o.accountId !== t.accountId)) throw new Error('conflict');
            await tx.insertIpAcl(aclRow(t, lo, hi));
            await tx.recordChange('trunks', null, at(i));
          }),
        ),
      );
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
      assert.equal((await store.read.listActiveIpAcls()).length, 1);
      assert.equal(await store.read.lastChangeId(), 1);
    });

    storeTest('change feed: ids follow commit order, contiguous under concurrency; changesSince pages past an id', async (store) => {
      const a = await seedAccount(store);
      assert.equal(await store.read.lastChangeId(), 0);
      assert.deepEqual(await store.read.changesSince(0), []);
      await store.transaction(async (tx) => {
        await tx.recordChange('account', a.id, at(1));
        await tx.recordChange('trunks', null, at(2));
      });
      await store.transaction((tx) => tx.recordChange('account_deleted', a.id, at(3)));
      assert.deepEqual(await store.read.changesSince(0), [
        { id: 1, accountId: a.id, kind: 'account', at: at(1), subject: null },
        { id: 2, accountId: null, kind: 'trunks', at: at(2), subject: null },
        { id: 3, accountId: a.id, kind: 'account_deleted', at: at(3), subject: null },
      ]);
      assert.deepEqual((await store.read.changesSince(2)).map((c) => c.id), [3]);
      assert.deepEqual((await store.read.changesSince(0, 2)).map((c) => c.id), [1, 2]);
      assert.equal(await store.read.lastChangeId(), 3);
      await store.transaction((tx) => tx.recordChange('trunk_block', a.id, at(4), '4:cb007100/24'));
      assert.deepEqual(await store.read.changesSince(3), [{ id: 4, accountId: a.id, kind: 'trunk_block', at: at(4), subject: '4:cb007100/24' }]);

      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.recordChange('account', a.id, at(10 + i));
            await tx.insertAudit(auditRow(a.id));
          }),
        ),
      );
      const ids = (await store.read.changesSince(0)).map((c) => c.id);
      assert.deepEqual(ids, Array.from({ length: 24 }, (_, i) => i + 1));
      assert.equal(await store.read.lastChangeId(), 24);
    });

    storeTest('audit: newest first, paging by seq, filtered by resource, documents kept', async (store) => {
      const a = await seedAccount(store);
      const b = await seedAccount(store);
      const written: Omit<AuditRow, 'seq'>[] = [];
      for (let i = 0; i < 7; i++) {
        const entry = auditRow(i === 3 ? b.id : a.id, {
          timestamp: at(i),
          resource: i % 2 === 0 ? 'devices' : 'ips',
          action: i === 6 ? 'delete' : 'update',
          actor: { account_id: b.id, user_id: 'u1', api_key: true },
          before: i === 0 ? null : { n: i - 1, nested: { list: [1, 'two'] } },
          after: i === 6 ? null : { n: i },
        });
        written.push(entry);
        await store.transaction((tx) => tx.insertAudit(entry));
      }
      const mine = written.filter((e) => e.accountId === a.id);
      const page1 = await store.read.listAudit(a.id, { limit: 4 });
      assert.deepEqual(page1.map((e) => e.id), mine.slice().reverse().slice(0, 4).map((e) => e.id));
      for (const e of page1) {
        const { seq, ...rest } = e;
        assert.equal(typeof seq, 'number');
        assert.deepEqual(rest, written.find((w) => w.id === e.id));
      }
      assert.ok(page1[0]!.seq > page1[1]!.seq);
      const page2 = await store.read.listAudit(a.id, { limit: 4, beforeSeq: page1[page1.length - 1]!.seq });
      assert.deepEqual(page2.map((e) => e.id), mine.slice().reverse().slice(4).map((e) => e.id));
      const ips = await store.read.listAudit(a.id, { limit: 50, resource: 'ips' });
      assert.deepEqual(ips.map((e) => e.id), mine.filter((e) => e.resource === 'ips').reverse().map((e) => e.id));
      assert.deepEqual((await store.read.listAudit(b.id, { limit: 50 })).map((e) => e.id), [written[3]!.id]);
      assert.deepEqual(await store.read.listAudit(hexId(), { limit: 50 }), []);
    });
  });
}
