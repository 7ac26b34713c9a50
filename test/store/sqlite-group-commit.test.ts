// Issue 23: SQLite commits queued transactions in groups (one fsync for many). Each caller hears
// back only once its write is committed and readable; a failing transaction in the middle of a
// group takes back its own writes alone.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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
