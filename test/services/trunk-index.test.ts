// Issue 23: the live trunk index after thousands of changes, folded into a new base in the
// worker thread, and after a full reload built aside, answers as a fresh build from the store.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DecisionIndex } from '../../src/core/index.ts';
import { buildTrunkBase, TrunkRebuild } from '../../src/core/trunk-table.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { TrunkBuilder } from '../../src/services/trunk-builder.ts';
import * as trunks from '../../src/services/trunks.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness({ maxIpAclsPerTrunk: '3000' });
});
after(() => h.close());

const ipOf = (n: number) => `203.0.${112 + (n >> 8)}.${n & 255}`;

async function freshLookups(sources: string[]): Promise<(string | null)[]> {
  const entries = (await h.services.ctx.store.read.listActiveIpAcls()).map((r) => ({ id: r.id, accountId: r.accountId, trunkId: r.trunkId, ipAddress: r.ipAddress }));
  const fresh = DecisionIndex.build({ accounts: [], trunkEntries: entries });
  return sources.map((ip) => fresh.trunkEntryFor(ip)?.id ?? null);
}

const liveLookups = (sources: string[]) => sources.map((ip) => h.services.ctx.decisions.trunkEntryFor(ip)?.id ?? null);

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(done(), what);
}

describe('TrunkBuilder', () => {
  test('a large table compiled in the worker thread is the one compiled in place, its arrays moved there and back', async () => {
    const rebuild = TrunkRebuild.of(Array.from({ length: 5000 }, (_, n) => ({ id: `e${n}`, accountId: 'a', trunkId: 't', ipAddress: n % 2 ? ipOf(n) : `2001:db8:${n.toString(16)}::/48` })));
    rebuild.fill(Infinity);
    const inPlace = buildTrunkBase(rebuild.input);
    const builder = new TrunkBuilder();
    try {
      const output = await builder.compile(rebuild.input);
      assert.deepEqual(output, inPlace);
      // Moved, not copied: the worker owns the input's arrays now (they read as empty here).
      assert.equal(rebuild.input.words.length, 0);
    } finally {
      await builder.close();
    }
  });
});

describe('the live trunk index', () => {
  test('thousands of block changes, folded into new bases built aside, answer as a fresh build', async () => {
    const ctx = h.services.ctx;
    const account = await h.account('Many');
    const trunk = await trunks.createTrunk(ctx, SYSTEM_ACTOR, account.id, { name: 'Big' });
    const created = await trunks.createIpAcls(ctx, SYSTEM_ACTOR, account.id, trunk.id, Array.from({ length: 2600 }, (_, n) => ({ ip_address: ipOf(n) })));
    await until('the overlay was folded into a new base', () => ctx.decisions.stats().trunkOverlay === 0);
    // Changes after the fold: some removed, some disabled, a wider block over them.
    for (const row of created.slice(0, 40)) await trunks.deleteIpAcl(ctx, SYSTEM_ACTOR, account.id, trunk.id, row.id);
    for (const row of created.slice(40, 60)) await trunks.updateIpAcl(ctx, SYSTEM_ACTOR, account.id, trunk.id, row.id, { enabled: false }, { merge: true });
    await trunks.createIpAcl(ctx, SYSTEM_ACTOR, account.id, trunk.id, { ip_address: '203.0.112.0/26' });
    const sources = Array.from({ length: 2700 }, (_, n) => ipOf(n));
    assert.deepEqual(liveLookups(sources), await freshLookups(sources));
    assert.equal(ctx.decisions.stats().trunkEntries, 2600 - 60 + 1);
  });

  test('a full reload (an old-style change) is built aside and agrees with a fresh build', async () => {
    const ctx = h.services.ctx;
    await ctx.store.transaction((tx) => tx.recordChange('trunks', null, new Date().toISOString()));
    await ctx.decisions.catchUp();
    const sources = Array.from({ length: 2700 }, (_, n) => ipOf(n));
    assert.deepEqual(liveLookups(sources), await freshLookups(sources));
  });
});
