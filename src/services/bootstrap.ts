// The bootstrap (`ipwarden create-account`): an account with its first admin user, in one
// transaction. The first account becomes the superduper master; later ones are created under it.

import type { AccountRow } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { insertAccount, presentAccount } from './accounts.ts';
import { recordAudit } from './audit.ts';
import type { ServiceContext } from './context.ts';
import { commit } from './context.ts';
import { AccountSchema, check } from './schemas.ts';
import { createUserInTx } from './users.ts';

export async function bootstrapAccount(ctx: ServiceContext, actor: Actor, input: { name: string; realm: string; username: string; password: string }): Promise<AccountRow> {
  check(AccountSchema, { name: input.name, realm: input.realm });
  return commit(ctx, async (tx) => {
    const first = (await tx.countAccounts()) === 0;
    const master = first ? null : (await tx.getMasterAccount()) ?? null;
    const account = await insertAccount(ctx, tx, { name: input.name, realm: input.realm, extra: {}, parent: master, superduper: first });
    await createUserInTx(ctx, tx, actor, account, { username: input.username, password: input.password, priv_level: 'admin' });
    await recordAudit(tx, actor, { accountId: account.id, action: 'create', resource: 'accounts', resourceId: account.id, after: presentAccount(account) });
    return account;
  });
}
