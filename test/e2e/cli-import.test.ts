// Issue 23: `trunks import` and `access-lists import` as real processes: all or nothing, problems
// by line, and --dry-run checking everything while writing nothing.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { startServices } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { createDevice } from '../../src/services/devices.ts';
import { createTrunk } from '../../src/services/trunks.ts';
import { cli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipwarden-import-'));
const db = join(dir, 'import.sqlite');
after(() => rmSync(dir, { recursive: true, force: true }));
const ipwarden = (...args: string[]) => cli(db, ...args);

/** Reads the database as a fresh node would. */
async function withStore<T>(fn: (services: Awaited<ReturnType<typeof startServices>>) => Promise<T>): Promise<T> {
  const services = await startServices(loadConfig({ db, logLevel: 'silent' }, {}));
  try {
    return await fn(services);
  } finally {
    await services.close();
  }
}

let account = '';
let trunk = '';
let device = '';
before(async () => {
  await withStore(async ({ ctx }) => {
    await bootstrapAccount(ctx, SYSTEM_ACTOR, { name: 'Master', realm: 'master.test', username: 'admin', password: 'secret' });
    account = (await bootstrapAccount(ctx, SYSTEM_ACTOR, { name: 'Tenant', realm: 'tenant.test', username: 'boss', password: 'pw' })).id;
    trunk = (await createTrunk(ctx, SYSTEM_ACTOR, account, { name: 'PBX' })).id;
    device = (await createDevice(ctx, SYSTEM_ACTOR, account, { name: 'Desk', sip: { username: 'desk' } })).id;
  });
});

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('trunks import', () => {
  test('a bad line: every problem by line, exit 1, nothing written', async () => {
    const bad = file('bad.csv', 'ip_address,description\n203.0.113.1,ok\n10.0.0.1,private\nnot-an-ip\n');
    const run = await ipwarden('trunks', 'import', bad, '--account', account, '--trunk', trunk);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^line 3, ip_address: .*not a public address/m);
    assert.match(run.stderr, /^line 4, ip_address: /m);
    assert.equal(await withStore(({ ctx }) => ctx.store.read.countIpAcls(trunk)), 0);
  });

  test('--dry-run reports and writes nothing; then the import writes every entry, live at once', async () => {
    const good = file('good.csv', 'ip_address,description\n203.0.113.1,Office, main line\n\n2001:db8:5::/48\n198.51.100.0/28,Lab\n');
    const dry = await ipwarden('trunks', 'import', good, '--account', account, '--trunk', trunk, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, 'dry run: all 3 entries are valid; nothing was written\n');
    assert.equal(await withStore(({ ctx }) => ctx.store.read.countIpAcls(trunk)), 0);
    const real = await ipwarden('trunks', 'import', good, '--account', account, '--trunk', trunk);
    assert.equal(real.code, 0, real.stderr);
    assert.equal(real.stdout, 'imported 3 entries\n');
    await withStore(async ({ ctx }) => {
      const rows = await ctx.store.read.listIpAcls({ trunkId: trunk });
      assert.deepEqual(rows.map((r) => [r.ipAddress, r.description]).sort(), [['198.51.100.0/28', 'Lab'], ['2001:db8:5::/48', ''], ['203.0.113.1', 'Office, main line']]);
      assert.equal(ctx.decisions.trunkEntryFor('2001:db8:5::1')?.trunkId, trunk);
    });
  });
});

describe('access-lists import', () => {
  test("an account's list: a bad line reported by line; --dry-run writes nothing; then the list is set", async () => {
    const bad = file('bad-cidrs.txt', '203.0.113.0/24\n10.0.0.1/8\n');
    const refused = await ipwarden('access-lists', 'import', bad, '--account', account);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^line 2: host bits are set/m);
    const good = file('cidrs.txt', '203.0.113.0/24\n2001:db8::/32\n');
    const dry = await ipwarden('access-lists', 'import', good, '--account', account, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^dry run: all 2 CIDRs are valid/);
    assert.equal(await withStore(async ({ ctx }) => (await ctx.store.read.getAccount(account))?.accessList), null);
    const set = await ipwarden('access-lists', 'import', good, '--account', account, '--order', 'deny,allow');
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(await withStore(async ({ ctx }) => (await ctx.store.read.getAccount(account))?.accessList), { order: 'deny,allow', cidrs: ['203.0.113.0/24', '2001:db8::/32'] });
  });

  test("a device's list", async () => {
    const run = await ipwarden('access-lists', 'import', file('device.txt', '198.51.100.7\n'), '--account', account, '--device', device);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await withStore(async ({ ctx }) => (await ctx.store.read.getDevice(device))?.accessList), { order: 'allow,deny', cidrs: ['198.51.100.7'] });
  });
});
