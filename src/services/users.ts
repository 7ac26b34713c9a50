// Users of an account (api.md §2): `admin` may write, `user` may only read. The password is
// write-only: stored as a KDF of KAZOO's md5 credentials, never returned, never audited.

import type { AccountRow, Json, Repository, UserRow } from '../store/port.ts';
import { UniqueViolationError } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { extraFields, findAccount, assertRevision } from './accounts.ts';
import { recordAudit } from './audit.ts';
import type { ServiceContext } from './context.ts';
import { commit } from './context.ts';
import { invalid, notFound } from './errors.ts';
import { newId, nextRevision, now } from './identity.ts';
import { credentialsOf, hashCredentials } from './passwords.ts';
import { check, UserSchema, type UserBody } from './schemas.ts';

const KNOWN = ['username', 'password', 'priv_level'] as const;

export function presentUser(u: UserRow): Json {
  return { ...u.extra, id: u.id, username: u.username, priv_level: u.privLevel, created: u.created, modified: u.modified };
}

const usernameTaken = (username: string) => invalid({ username: { unique: { message: 'Username is already in use', value: username } } });
const passwordRequired = () => invalid({ password: { required: { message: 'Field is required but missing' } } });

/** What is stored of a password: its slow hash, and the tag that finds it at login (auth.ts). */
async function storedSecret(ctx: ServiceContext, username: string, password: string): Promise<Pick<UserRow, 'passwordHash' | 'loginTag'>> {
  const credentials = credentialsOf(username, password);
  return { passwordHash: await hashCredentials(credentials), loginTag: ctx.secrets.loginTag(credentials) };
}

export async function createUserInTx(ctx: ServiceContext, tx: Repository, actor: Actor, account: AccountRow, body: UserBody, extra: Json = {}): Promise<UserRow> {
  if (body.password === undefined) throw passwordRequired();
  const username = body.username.toLowerCase();
  if (await tx.getUserByUsername(account.id, username)) throw usernameTaken(username);
  const at = now();
  const row: UserRow = {
    id: newId(),
    accountId: account.id,
    username,
    ...(await storedSecret(ctx, username, body.password)),
    privLevel: body.priv_level ?? 'user',
    extra,
    revision: nextRevision(),
    created: at,
    modified: at,
  };
  try {
    await tx.insertUser(row);
  } catch (error) {
    if (error instanceof UniqueViolationError) throw usernameTaken(username);
    throw error;
  }
  await recordAudit(tx, actor, { accountId: account.id, action: 'create', resource: 'users', resourceId: row.id, after: presentUser(row) });
  return row;
}

export async function createUser(ctx: ServiceContext, actor: Actor, accountId: string, body: Json): Promise<UserRow> {
  const account = await findAccount(ctx, actor, accountId, 'write');
  const valid = check(UserSchema, body);
  return commit(ctx, (tx) => createUserInTx(ctx, tx, actor, account, valid, extraFields(body, KNOWN)));
}

export async function listUsers(ctx: ServiceContext, actor: Actor, accountId: string): Promise<UserRow[]> {
  await findAccount(ctx, actor, accountId, 'read');
  return ctx.store.read.listUsers(accountId);
}

export async function getUser(ctx: ServiceContext, actor: Actor, accountId: string, userId: string): Promise<UserRow> {
  await findAccount(ctx, actor, accountId, 'read');
  const user = await ctx.store.read.getUser(userId);
  if (!user || user.accountId !== accountId) throw notFound(userId);
  return user;
}

export async function updateUser(ctx: ServiceContext, actor: Actor, accountId: string, userId: string, body: Json, options: { merge: boolean; expectedRevision?: string }): Promise<UserRow> {
  const current = await getUser(ctx, actor, accountId, userId);
  await findAccount(ctx, actor, accountId, 'write');
  const merged = options.merge ? { ...presentUser(current), ...body } : body;
  const valid = check(UserSchema, merged);
  // The hash is of "username:password": a new username needs the password again.
  const username = valid.username.toLowerCase();
  if (username !== current.username && valid.password === undefined) throw passwordRequired();
  const secret = valid.password === undefined ? undefined : await storedSecret(ctx, username, valid.password);
  return commit(ctx, async (tx) => {
    const before = await tx.getUser(userId);
    if (!before || before.accountId !== accountId) throw notFound(userId);
    assertRevision(before.revision, options.expectedRevision);
    if (username !== before.username && (await tx.getUserByUsername(accountId, username))) throw usernameTaken(username);
    const extra = extraFields(body, KNOWN);
    const after: UserRow = {
      ...before,
      username,
      ...(secret ?? { passwordHash: before.passwordHash, loginTag: before.loginTag }),
      privLevel: valid.priv_level ?? before.privLevel,
      extra: options.merge ? { ...before.extra, ...extra } : extra,
      revision: nextRevision(before.revision),
      modified: now(),
    };
    await tx.updateUser(after);
    await recordAudit(tx, actor, { accountId, action: 'update', resource: 'users', resourceId: userId, before: presentUser(before), after: presentUser(after) });
    return after;
  });
}

export async function deleteUser(ctx: ServiceContext, actor: Actor, accountId: string, userId: string): Promise<UserRow> {
  await getUser(ctx, actor, accountId, userId);
  await findAccount(ctx, actor, accountId, 'write');
  return commit(ctx, async (tx) => {
    const before = await tx.getUser(userId);
    if (!before || before.accountId !== accountId) throw notFound(userId);
    await tx.deleteUser(userId);
    await recordAudit(tx, actor, { accountId, action: 'delete', resource: 'users', resourceId: userId, before: presentUser(before) });
    return before;
  });
}
