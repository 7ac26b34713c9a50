// Issue 23: the scans every write (or login) runs are answered by an index, not by reading the
// table: the audit sequence, the trunk overlap probes, the prune of login attempts and of expired
// tokens. SQLite's own query plans say so; and a login removes the expired tokens.

import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { startServices } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { credentialsOf } from '../../src/services/passwords.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipwarden-bounded-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function plan(db: Database.Database, sql: string): string {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('\n');
}

describe('per-write queries use an index', () => {
  const file = join(dir, 'plans.db');
  openSqliteStore(file).close();
  const db = new Database(file, { readonly: true });
  after(() => db.close());

  test('the audit sequence: MAX(seq) from the index', () => {
    assert.match(plan(db, 'SELECT COALESCE(MAX(seq), 0) AS n FROM audit'), /SEARCH audit USING COVERING INDEX audit_seq/);
  });
  test('the prune of login attempts and of expired tokens', () => {
    assert.match(plan(db, "DELETE FROM login_attempts WHERE at < '2026'"), /SEARCH login_attempts USING (COVERING )?INDEX login_attempts_at \(at<\?\)/);
    assert.match(plan(db, "DELETE FROM tokens WHERE expires_at < '2026'"), /SEARCH tokens USING (COVERING )?INDEX tokens_expires \(expires_at<\?\)/);
  });
  test('the trunk overlap probes: index searches, no scan of ip_acls', () => {
    const starts = Array.from({ length: 33 }, (_, i) => `'${i.toString(16).padStart(8, '0')}'`).join(', ');
    const trunkEnabled = '(SELECT t.enabled FROM trunks t WHERE t.id = a.trunk_id) = 1';
    const probes = plan(db, `SELECT a.* FROM ip_acls a WHERE a.family = 4 AND a.range_lo IN (${starts}) AND a.enabled = 1 AND ${trunkEnabled}`);
    assert.match(probes, /SEARCH a USING INDEX ip_acls_range \(family=\? AND range_lo=\?\)/);
    assert.doesNotMatch(probes, /SCAN a\b/);
    const inside = plan(db, `SELECT a.* FROM ip_acls a WHERE a.family = 4 AND a.range_lo > '0a000000' AND a.range_lo <= '0a0000ff' AND a.enabled = 1 AND ${trunkEnabled}`);
    assert.match(inside, /SEARCH a USING INDEX ip_acls_range \(family=\? AND range_lo>\? AND range_lo<\?\)/);
  });
});

test('a login removes the tokens that have expired', async () => {
  const services = await startServices(loadConfig({ db: join(dir, 'tokens.db'), logLevel: 'silent' }, {}));
  try {
    const account = await bootstrapAccount(services.ctx, SYSTEM_ACTOR, { name: 'Master', realm: 'master.test', username: 'admin', password: 'secret' });
    const expired = { hash: 'old', accountId: account.id, ownerId: null, method: 'cb_user_auth', expiresAt: '2020-01-01T00:00:00.000Z', created: '2020-01-01T00:00:00.000Z' };
    const live = { ...expired, hash: 'live', expiresAt: '2999-01-01T00:00:00.000Z' };
    await services.ctx.store.transaction(async (tx) => {
      await tx.insertToken(expired);
      await tx.insertToken(live);
    });
    const read = services.ctx.store.read;
    assert.ok(await read.getToken('old'));
    await services.auth.userAuth({ credentials: credentialsOf('admin', 'secret'), account_realm: 'master.test' }, '127.0.0.1');
    assert.equal(await read.getToken('old'), undefined, 'the expired token is gone');
    assert.ok(await read.getToken('live'), 'a live token stays');
  } finally {
    await services.close();
  }
});
