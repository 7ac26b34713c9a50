// Issue 23: the SQLite store runs a long transaction (a bulk load's) in a worker thread with a
// connection of its own, so its statements and COMMIT never hold the event loop; queued with
// every other transaction, all or nothing, its errors brought back.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/port.ts';
import { ip } from './tasks/aside-tasks.ts';

const module = new URL('./tasks/aside-tasks.ts', import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), 'ipwarden-aside-'));
let store: Store;
before(() => {
  store = openSqliteStore(join(dir, 'aside.db'));
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const ips = async () => (await store.read.listIps({})).map((r) => Number(r.ip.split('.')[3])).sort((a, b) => a - b);

test('a task runs in its own transaction off the event loop, in turn with the others', async () => {
  assert.ok(store.transactionAside);
  // The worker starts on first need: started here, so that the ticks below count the task alone.
  await store.transactionAside({ module, name: 'insertIps' }, { from: 1, to: 1, busyMs: 0 });
  // Queued before the task: committed before it begins (the task sees it); queued after: after.
  const before = store.transaction((tx) => tx.insertIp(ip(2)));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const seen = store.transactionAside!<object, number>({ module, name: 'insertIps' }, { from: 10, to: 19, busyMs: 150 });
  const afterIt = store.transaction(async (tx) => (await tx.listIps({})).length);
  await before;
  assert.equal(await seen, 12);
  clearInterval(timer);
  assert.equal(await afterIt, 12);
  // 150 ms of the task's own work on its thread; this loop went on turning meanwhile (run here,
  // the task would have held it: a tick or two).
  assert.ok(ticks >= 20, `the event loop turned ${ticks} times`);
  assert.deepEqual(await ips(), [1, 2, ...Array.from({ length: 10 }, (_, i) => 10 + i)]);
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
