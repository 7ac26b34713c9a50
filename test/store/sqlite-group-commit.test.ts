// Issue 23: SQLite commits queued transactions in groups (one fsync for many). Each caller hears
// back only once its write is committed and readable; a failing transaction in the middle of a
// group takes back its own writes alone.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { IpRow } from '../../src/store/port.ts';

const ip = (n: number): IpRow => ({ ip: `192.0.2.${n}`, zone: 'z', host: 'h', assignedTo: null, revision: '1-a', created: 'x', modified: 'x' });

test('group commit: every caller answered after its commit, failures roll back alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-group-'));
  const store = openSqliteStore(join(dir, 'group.db'));
  try {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 40 }, (_, n) =>
        store.transaction(async (tx) => {
          await tx.insertIp(ip(n));
          if (n % 7 === 3) throw new Error(`refused ${n}`);
          // Committed and visible to other readers by the time this caller is answered.
          return n;
        }).then(async (n) => {
          assert.ok(await store.read.getIp(`192.0.2.${n}`), `${n} readable once answered`);
          return n;
        }),
      ),
    );
    const refused = outcomes.flatMap((o, n) => (o.status === 'rejected' ? [n] : []));
    assert.deepEqual(refused, [3, 10, 17, 24, 31, 38]);
    const stored = (await store.read.listIps({})).map((r) => Number(r.ip.split('.')[3])).sort((a, b) => a - b);
    assert.deepEqual(stored, Array.from({ length: 40 }, (_, n) => n).filter((n) => !refused.includes(n)));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkpoints: the database file takes in the WAL while the store stays open (the writer never checkpoints itself)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-checkpoint-'));
  const file = join(dir, 'checkpoint.db');
  const store = openSqliteStore(file);
  try {
    const before = statSync(file).size;
    const wide = (n: number): IpRow => ({ ...ip(n), host: 'h'.repeat(500), ip: `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}` });
    for (let from = 0; from < 2000; from += 100) {
      await store.transaction(async (tx) => {
        for (let n = from; n < from + 100; n++) await tx.insertIp(wide(n));
      });
    }
    // About a megabyte written: in the WAL at first, in the database file once checkpointed.
    const deadline = Date.now() + 5000;
    while (statSync(file).size < before + 500_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(statSync(file).size >= before + 500_000, `the database file is still ${statSync(file).size} bytes`);
    assert.equal((await store.read.listIps({})).length, 2000);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('transactions that arrive together leave the event loop a turn every few milliseconds', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-slices-'));
  const store = openSqliteStore(join(dir, 'slices.db'));
  try {
    const events: string[] = [];
    let timerFired = false;
    setTimeout(() => {
      timerFired = true;
      events.push('timer');
    }, 0);
    // Forty transactions of a millisecond each, all queued in this turn: 40 ms back to back before.
    await Promise.all(
      Array.from({ length: 40 }, (_, n) =>
        store.transaction(async (tx) => {
          events.push(`tx ${n}`);
          const end = performance.now() + 1;
          while (performance.now() < end);
          await tx.insertIp(ip(n));
        }),
      ),
    );
    assert.ok(timerFired);
    const timerAt = events.indexOf('timer');
    assert.ok(timerAt >= 0 && timerAt <= 10, `the timer ran after ${timerAt} transactions: ${events.join(', ')}`);
    assert.equal((await store.read.listIps({})).length, 40);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
