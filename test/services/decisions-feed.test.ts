// Decisions (src/services/decisions.ts) over an in-memory SQLite store: the index follows the
// store's change feed only when it catches up, a page at a time; calls made while a catch-up runs
// share the next one; and a feed it cannot read marks the index stale until a catch-up succeeds.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { AccessList } from '../../src/core/acl.ts';
import { CHANGES_PAGE, Decisions } from '../../src/services/decisions.ts';
import { StoreUnavailableError, type AccountRow, type ChangeRow, type Repository, type Store } from '../../src/store/port.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';

const AT = '2026-01-01T00:00:00.000Z';
const ALLOW_TEST_NET: AccessList = { order: 'allow,deny', cidrs: ['192.0.2.0/24'] };

function accountRow(id: string, accessList: AccessList | null): AccountRow {
  return { id, name: id, nameKey: id, realm: `${id}.test`, parentId: null, path: `/${id}/`, superduper: false, apiKeyHash: `hash-${id}`, apiKeySealed: null, accessList, extra: {}, revision: '1-a', created: AT, modified: AT };
}

/** The store as Decisions sees it, with its feed reads counted, and held or failed on demand. */
class WatchedStore {
  reads = 0;
  down = false;
  /** While set, each read of the feed waits for it after reading. */
  hold: Promise<void> | null = null;
  readonly store: Store;

  constructor(readonly inner: Store) {
    const changesSince = async (id: number, limit?: number): Promise<ChangeRow[]> => {
      if (this.down) throw new StoreUnavailableError('the database is out of reach');
      const rows = await inner.read.changesSince(id, limit);
      this.reads++;
      if (this.hold) await this.hold;
      return rows;
    };
    const read: Repository = Object.create(inner.read, { changesSince: { value: changesSince } });
    this.store = { kind: inner.kind, read, transaction: (fn) => inner.transaction(fn), ping: () => inner.ping(), close: () => inner.close() };
  }
}

let inner: Store;
let watched: WatchedStore;
let decisions: Decisions;

beforeEach(async () => {
  inner = openSqliteStore(':memory:');
  watched = new WatchedStore(inner);
  decisions = new Decisions(watched.store, { unknownRealm: 'deny' });
  await decisions.load();
});

afterEach(async () => {
  decisions.stop();
  await inner.close();
});

const addAccount = (id: string, list: AccessList | null) =>
  inner.transaction(async (tx) => {
    await tx.insertAccount(accountRow(id, list));
    await tx.recordChange('account', id, AT);
  });

const decisionFor = (id: string, ip: string) => decisions.decide(id, undefined, ip, '')?.decision;

describe('Decisions follows the change feed', () => {
  test('a committed change is decided on after catchUp(), not before; a deleted account leaves the index', async () => {
    await addAccount('a', ALLOW_TEST_NET);
    assert.equal(decisions.accountPath('a'), undefined, 'not applied before a catch-up');
    await decisions.catchUp();
    assert.equal(decisions.accountPath('a'), '/a/');
    assert.equal(decisionFor('a', '192.0.2.1'), 'allow');
    assert.equal(decisionFor('a', '198.51.100.1'), 'deny');
    assert.deepEqual(decisions.storedAccessList('a'), ALLOW_TEST_NET);
    assert.equal(decisions.stats().lastChangeId, await inner.read.lastChangeId());

    await inner.transaction(async (tx) => {
      await tx.updateAccount({ ...accountRow('a', null), revision: '2-b' });
      await tx.recordChange('account', 'a', AT);
    });
    await decisions.catchUp();
    assert.equal(decisions.storedAccessList('a'), null);

    await inner.transaction(async (tx) => {
      await tx.deleteAccount('a');
      await tx.recordChange('account_deleted', 'a', AT);
    });
    await decisions.catchUp();
    assert.equal(decisions.accountPath('a'), undefined);
    assert.equal(decisions.stats().accounts, 0);
  });

  test('a long feed is read a page at a time, in one catch-up', async () => {
    assert.ok(CHANGES_PAGE < 2500, 'the feed below spans several pages');
    await addAccount('a', ALLOW_TEST_NET);
    await inner.transaction(async (tx) => {
      for (let i = 0; i < 2499; i++) await tx.recordChange('account', 'a', AT);
    });
    const applied: number[] = [];
    decisions.onApplied = async (id) => void applied.push(id);
    watched.reads = 0;
    await decisions.catchUp();
    assert.equal(watched.reads, Math.floor(2500 / CHANGES_PAGE) + 1, 'full pages, then the short one that ends the catch-up');
    assert.equal(decisions.stats().lastChangeId, 2500);
    assert.deepEqual(applied, [2500], 'the other copies are told once, with the last change');
    await decisions.catchUp();
    assert.deepEqual(applied, [2500], 'nothing new: nobody told');
  });

  test('catch-ups asked for while one runs share the next one', async () => {
    let release!: () => void;
    watched.hold = new Promise((resolve) => (release = resolve));
    watched.reads = 0;
    const first = decisions.catchUp();
    while (watched.reads === 0) await new Promise((resolve) => setImmediate(resolve));
    // The first run has read the feed and is held: a write lands, and five callers ask.
    await addAccount('late', ALLOW_TEST_NET);
    const asked = Array.from({ length: 5 }, () => decisions.catchUp());
    assert.notEqual(asked[0], first);
    for (const call of asked) assert.equal(call, asked[0], 'one shared run');
    watched.hold = null;
    release();
    await Promise.all([first, ...asked]);
    assert.equal(watched.reads, 2, 'the held run and one more, not six');
    assert.equal(decisionFor('late', '192.0.2.1'), 'allow', 'the shared run applied the write made meanwhile');
  });
});

describe('Decisions when the feed cannot be read', () => {
  test('a failed catch-up marks the index stale: decisions go on, the stored lists are not trusted; a good one makes it current', async () => {
    await addAccount('a', ALLOW_TEST_NET);
    await decisions.catchUp();
    assert.equal(decisions.stats().current, true);

    watched.down = true;
    await addAccount('b', ALLOW_TEST_NET);
    await assert.rejects(decisions.catchUp(), StoreUnavailableError);
    assert.equal(decisions.stats().current, false);
    assert.equal(decisionFor('a', '192.0.2.1'), 'allow', 'decided from the last index (api.md §6)');
    assert.equal(decisions.storedAccessList('a'), undefined, 'a list read may be behind the database: read the database');
    assert.equal(decisions.accountPath('b'), undefined);

    watched.down = false;
    await decisions.catchUp();
    assert.equal(decisions.stats().current, true);
    assert.deepEqual(decisions.storedAccessList('a'), ALLOW_TEST_NET);
    assert.equal(decisionFor('b', '192.0.2.1'), 'allow', 'what was missed is applied');
  });

  test('markStale() stops trusting the stored lists until the next catch-up', async () => {
    await addAccount('a', null);
    await decisions.catchUp();
    assert.equal(decisions.storedAccessList('a'), null);
    decisions.markStale();
    assert.equal(decisions.stats().current, false);
    assert.equal(decisions.storedAccessList('a'), undefined);
    await decisions.catchUp();
    assert.equal(decisions.storedAccessList('a'), null);
  });
});
