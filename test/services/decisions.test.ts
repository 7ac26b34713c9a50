// A stored user_agent pattern that no longer compiles (issue 20): written before a check existed,
// by an older version, or by hand. Its list denies every request, the decision names the reason,
// and the log says so once, however often the index is rebuilt.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createLogger, startServices } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { commit } from '../../src/services/context.ts';

test('a stored pattern that does not compile denies, is named in the decision and is logged once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-decisions-'));
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger('info', sink);
  const services = await startServices(loadConfig({ db: join(dir, 'd.db') }, {}), logger);
  try {
    const { ctx } = services;
    const account = await bootstrapAccount(ctx, SYSTEM_ACTOR, { name: 'Old', realm: 'old.test', username: 'admin', password: 'pw' });
    // Straight into the store, as no API call could write it.
    await commit(ctx, async (tx) => {
      const row = (await tx.getAccount(account.id))!;
      await tx.updateAccount({ ...row, accessList: { order: 'deny,allow', cidrs: [], user_agent: 'Yealink(' } });
      await tx.recordChange('account', account.id, new Date().toISOString());
    });
    const verdict = ctx.decisions.decide(account.id, undefined, '192.0.2.1', 'Yealink T46S');
    assert.deepEqual(verdict, { decision: 'deny', account: { decision: 'deny', reason: 'user_agent_invalid', order: 'deny,allow' } });
    assert.equal(ctx.decisions.decideByRealm('192.0.2.1', 'old.test', 'x', 'Yealink').decision, 'deny');

    // Rebuilt from scratch, and the account touched again: still one line.
    await ctx.decisions.load();
    await commit(ctx, (tx) => tx.recordChange('account', account.id, new Date().toISOString()));
    logger.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const reports = lines.filter((l) => l.level === 40 && String(l.msg).includes('user_agent'));
    assert.equal(reports.length, 1, JSON.stringify(lines));
    assert.equal(reports[0]!.accountId, account.id);
    assert.equal(reports[0]!.pattern, 'Yealink(');
    assert.match(String(reports[0]!.message), /RE2/);
  } finally {
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
