// Issue 23: a store runs a long transaction (a bulk load's) in a worker thread with a connection
// of its own, so its statements, rows and COMMIT never hold the event loop: on SQLite queued with
// every other transaction, on PostgreSQL behind the same writer lock; all or nothing, its errors
// brought back. PostgreSQL unreachable: its tests are skipped with the reason, except under
// CI=true, where that is a failure.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Store } from '../../src/store/port.ts';
import { unreachable } from '../support/postgres.ts';
import { openPostgresInFreshSchema, openSqliteInTempDir, type OpenedStore } from './open-stores.ts';
import { ip } from './tasks/aside-tasks.ts';

const module = new URL('./tasks/aside-tasks.ts', import.meta.url).href;

function asideSuite(name: string, open: () => Promise<OpenedStore>, skip?: string): void {
  describe(`transactions aside: ${name}`, skip === undefined ? {} : { skip }, () => {
    let opened: OpenedStore;
    let store: Store;
    before(async () => {
      opened = await open();
      store = opened.store;
    });
    after(() => opened.cleanup());

    const ips = async () => (await store.read.listIps({})).map((r) => Number(r.ip.split('.')[3])).sort((a, b) => a - b);

    test('a task runs in its own transaction off the event loop', async () => {
      assert.ok(store.transactionAside);
      // The worker starts on first need: started here, so that the ticks below count the task alone.
      await store.transactionAside({ module, name: 'insertIps' }, { from: 1, to: 1, busyMs: 0 });
      await store.transaction((tx) => tx.insertIp(ip(2)));
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const seen = await store.transactionAside!<object, number>({ module, name: 'insertIps' }, { from: 10, to: 19, busyMs: 150 });
      clearInterval(timer);
      assert.equal(seen, 12);
      // 150 ms of the task's own work on its thread; this loop went on turning meanwhile (run here,
      // the task would have held it: a tick or two).
      assert.ok(ticks >= 20, `the event loop turned ${ticks} times`);
      assert.deepEqual(await ips(), [1, 2, ...Array.from({ length: 10 }, (_, i) => 10 + i)]);
    });

    test('tasks and transactions take turns: each sees every write committed before it, and nothing half-done', async () => {
      const count = () => store.transaction(async (tx) => (await tx.listIps({})).length);
      const start = await count();
      // Started together: whatever order they commit in, each sees a whole state, never a task's part.
      const [a, b, c] = await Promise.all([
        store.transactionAside!<object, number>({ module, name: 'insertIps' }, { from: 100, to: 109, busyMs: 30 }),
        store.transaction(async (tx) => {
          await tx.insertIp(ip(120));
          return (await tx.listIps({})).length;
        }),
        store.transactionAside!<object, number>({ module, name: 'insertIps' }, { from: 130, to: 139, busyMs: 0 }),
      ]);
      for (const seen of [a, b, c]) assert.ok([1, 10, 11, 20, 21].map((n) => start + n).includes(seen), `saw ${seen - start} of the new rows`);
      assert.equal(new Set([a, b, c]).size, 3, 'no two saw the same state');
      assert.equal(await count(), start + 21);
    });

    test('a task that throws writes nothing; its error comes back with its name, message and fields', async () => {
      const failed = await store.transactionAside!({ module, name: 'insertThenRefuse' }, { n: 30 }).then(
        () => assert.fail('it resolved'),
        (error: unknown) => error as { name: string; message: string; kind: string; details: { cause: string } },
      );
      assert.deepEqual({ name: failed.name, message: failed.message, kind: failed.kind, details: failed.details }, { name: 'Refusal', message: 'refused', kind: 'conflict', details: { cause: 'number 30' } });
      assert.ok(!(await ips()).includes(30));
    });

    test('rollback: the task runs and answers, nothing it wrote stays', async () => {
      const seen = await store.transactionAside!<object, number>({ module, name: 'insertIps' }, { from: 40, to: 44, busyMs: 0 }, { rollback: true });
      assert.equal(seen, (await ips()).length + 5);
      assert.ok(!(await ips()).includes(40));
      // The store writes on as before.
      await store.transaction((tx) => tx.insertIp(ip(50)));
      assert.ok((await ips()).includes(50));
    });
  });
}

asideSuite('sqlite', openSqliteInTempDir);

test('sqlite: a task takes its place in the store\'s queue, after what was asked before it and before what was asked after', async () => {
  const { store, cleanup } = await openSqliteInTempDir();
  try {
    await store.transactionAside!({ module, name: 'insertIps' }, { from: 1, to: 1, busyMs: 0 });
    const earlier = store.transaction((tx) => tx.insertIp(ip(2)));
    const seen = store.transactionAside!<object, number>({ module, name: 'insertIps' }, { from: 10, to: 19, busyMs: 50 });
    const later = store.transaction(async (tx) => (await tx.listIps({})).length);
    await earlier;
    assert.equal(await seen, 12);
    assert.equal(await later, 12);
  } finally {
    await cleanup();
  }
});

const unavailable = await unreachable();
if (unavailable && process.env.CI === 'true') {
  test('PostgreSQL is reachable (required under CI)', () => assert.fail(unavailable));
}
asideSuite('postgres', openPostgresInFreshSchema, unavailable ?? undefined);
