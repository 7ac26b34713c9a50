// Issue 23: the overlap rule (api.md §5), now answered by indexed probes, still holds when
// tenants really race: on SQLite through one node, and on PostgreSQL through two nodes (two
// services over one schema), single entries and bulk loads alike. Exactly one tenant ends up
// owning the contested addresses, and every node's index agrees with the store.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { startServices, type Services } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import * as trunks from '../../src/services/trunks.ts';
import { admin, BASE_URL, schemaUrl, unreachable } from '../support/postgres.ts';

// Each contender claims a different block, all holding 203.0.113.77.
const CLAIMS = ['203.0.113.0/24', '203.0.113.64/26', '203.0.113.77', '203.0.112.0/22', '203.0.113.72/29', '203.0.113.0/25', '203.0.113.76/30', '203.0.0.0/16'];

async function race(nodes: Services[]): Promise<void> {
  const ctx = nodes[0]!.ctx;
  await bootstrapAccount(ctx, SYSTEM_ACTOR, { name: 'Master', realm: `master${randomBytes(3).toString('hex')}.test`, username: 'admin', password: 'secret' });
  const tenants = [];
  for (const [i] of CLAIMS.entries()) {
    const account = await bootstrapAccount(ctx, SYSTEM_ACTOR, { name: `T${i}`, realm: `t${i}${randomBytes(3).toString('hex')}.test`, username: 'admin', password: 'pw' });
    const trunk = await trunks.createTrunk(ctx, SYSTEM_ACTOR, account.id, { name: 'PBX' });
    tenants.push({ account: account.id, trunk: trunk.id });
  }
  // Half claim with a single entry, half with a bulk load that also holds uncontested entries;
  // contenders alternate between the nodes.
  const outcomes = await Promise.allSettled(
    tenants.map((t, i) => {
      const node = nodes[i % nodes.length]!.ctx;
      return i % 2 === 0
        ? trunks.createIpAcl(node, SYSTEM_ACTOR, t.account, t.trunk, { ip_address: CLAIMS[i]! })
        : trunks.createIpAcls(node, SYSTEM_ACTOR, t.account, t.trunk, [{ ip_address: `198.51.100.${i}` }, { ip_address: CLAIMS[i]! }]);
    }),
  );
  const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
  assert.equal(winners.length, 1, `winners: ${winners.map((i) => CLAIMS[i]).join(', ')}`);
  for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as Error).message, 'conflicting documents');
  const winner = tenants[winners[0]!]!;
  const stored = await ctx.store.read.listActiveIpAcls();
  assert.ok(stored.every((row) => row.accountId === winner.account), 'nothing of a loser was written');
  for (const node of nodes) {
    await node.ctx.decisions.catchUp();
    assert.equal(node.ctx.decisions.trunkEntryFor('203.0.113.77')?.accountId, winner.account);
  }
}

const unavailable = await unreachable();

describe('the overlap rule under real races', () => {
  test('SQLite: eight tenants race for nested blocks; exactly one wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipwarden-race-'));
    const node = await startServices(loadConfig({ db: join(dir, 'race.db'), logLevel: 'silent' }, {}));
    try {
      await race([node]);
    } finally {
      await node.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('PostgreSQL: eight tenants race through two nodes; exactly one wins', unavailable ? { skip: unavailable } : {}, async () => {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    await admin((c) => c.query(`CREATE SCHEMA ${schema}`));
    const config = loadConfig({ databaseUrl: schemaUrl(BASE_URL, schema), logLevel: 'silent' }, {});
    const nodes = [await startServices(config), await startServices(config)];
    try {
      await race(nodes);
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
      await admin((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    }
  });
});
