// Accounts and their hierarchy (api.md §2): creation (bootstrap.ts makes the first one, the
// superduper master), reading, replacing, patching, deleting (children first; dedicated IPs go
// back to the pool), children, descendants and the account's API key.

import { randomBytes } from 'node:crypto';
import type { AccountRow, Json, Repository } from '../store/port.ts';
import { UniqueViolationError } from '../store/port.ts';
import type { Access, Actor } from './actor.ts';
import { authorize } from './actor.ts';
import { recordAudit } from './audit.ts';
import { recordBlockChanges } from './trunk-blocks.ts';
import type { ServiceContext } from './context.ts';
import { commit } from './context.ts';
import { Failure, invalid, notFound } from './errors.ts';
import { newId, nextRevision, now } from './identity.ts';
import { AccountSchema, check } from './schemas.ts';
import { apiKeyHashOf } from './secrets.ts';

/** Fields a body never sets (api.md §1); `ui_metadata` and `accept_charges` are ignored too. */
const SERVER_OWNED = new Set(['id', 'parent_id', 'superduper_admin', 'created', 'modified', 'revision', 'api_key', 'ui_metadata', 'accept_charges', 'access_lists']);

/** Everything in a body that is not server-owned and not one of `known`. */
export function extraFields(body: Json, known: readonly string[]): Json {
  const extra: Json = {};
  for (const [key, value] of Object.entries(body)) {
    if (!SERVER_OWNED.has(key) && !known.includes(key) && !key.startsWith('pvt_')) extra[key] = value;
  }
  return extra;
}

/** KAZOO matches account names lowercased with non-alphanumerics dropped. */
export function nameKeyOf(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

export function presentAccount(a: AccountRow): Json {
  const doc: Json = { ...a.extra, id: a.id, name: a.name, realm: a.realm, superduper_admin: a.superduper, created: a.created, modified: a.modified };
  if (a.parentId !== null) doc.parent_id = a.parentId;
  return doc;
}

/** The account, if it exists (else 404) and the actor may touch it (else 403). */
export async function findAccount(ctx: ServiceContext, actor: Actor, id: string, access: Access, repo: Repository = ctx.store.read): Promise<AccountRow> {
  const account = await repo.getAccount(id);
  if (!account) throw notFound(id);
  authorize(actor, account, access);
  return account;
}

function realmTaken(realm: string): Failure {
  return invalid({ realm: { unique: { message: 'Realm is already in use', value: realm } } });
}

/** A new API key (64 lowercase hex, api.md §2) as stored: its hash and its sealed copy. */
function newApiKey(ctx: ServiceContext, accountId: string): { apiKey: string; apiKeyHash: string; apiKeySealed: string } {
  const apiKey = randomBytes(32).toString('hex');
  return { apiKey, apiKeyHash: apiKeyHashOf(apiKey), apiKeySealed: ctx.secrets.seal(accountId, apiKey) };
}

/** Inserts a new account row (its realm still free) inside the caller's transaction, announced. */
export async function insertAccount(ctx: ServiceContext, tx: Repository, input: { name: string; realm: string; extra: Json; parent: AccountRow | null; superduper: boolean }): Promise<AccountRow> {
  const realm = input.realm.toLowerCase();
  if (await tx.getAccountByRealm(realm)) throw realmTaken(realm);
  const id = newId();
  const at = now();
  const { apiKeyHash, apiKeySealed } = newApiKey(ctx, id);
  const row: AccountRow = {
    id,
    name: input.name,
    nameKey: nameKeyOf(input.name),
    realm,
    parentId: input.parent?.id ?? null,
    path: `${input.parent?.path ?? '/'}${id}/`,
    superduper: input.superduper,
    apiKeyHash,
    apiKeySealed,
    accessList: null,
    extra: input.extra,
    revision: nextRevision(),
    created: at,
    modified: at,
  };
  try {
    await tx.insertAccount(row);
  } catch (error) {
    if (error instanceof UniqueViolationError) throw realmTaken(realm);
    throw error;
  }
  await tx.recordChange('account', id, at);
  return row;
}

export async function createChildAccount(ctx: ServiceContext, actor: Actor, parentId: string, body: Json): Promise<AccountRow> {
  const parent = await findAccount(ctx, actor, parentId, 'write');
  const valid = check(AccountSchema, body);
  return commit(ctx, async (tx) => {
    const account = await insertAccount(ctx, tx, { name: valid.name, realm: valid.realm, extra: extraFields(body, ['name', 'realm']), parent, superduper: false });
    await recordAudit(tx, actor, { accountId: account.id, action: 'create', resource: 'accounts', resourceId: account.id, after: presentAccount(account) });
    return account;
  });
}

export function assertRevision(current: string, expected: string | undefined): void {
  if (expected !== undefined && expected !== current) throw new Failure('precondition_failed', 'precondition failed', { cause: current });
}

/** POST replaces the document; PATCH (`merge`) keeps what the body does not name. */
export async function updateAccount(ctx: ServiceContext, actor: Actor, id: string, body: Json, options: { merge: boolean; expectedRevision?: string }): Promise<AccountRow> {
  const current = await findAccount(ctx, actor, id, 'write');
  const merged: Json = options.merge ? { ...presentAccount(current), ...body } : body;
  const valid = check(AccountSchema, merged);
  return commit(ctx, async (tx) => {
    const before = await tx.getAccount(id);
    if (!before) throw notFound(id);
    assertRevision(before.revision, options.expectedRevision);
    const realm = valid.realm.toLowerCase();
    if (realm !== before.realm && (await tx.getAccountByRealm(realm))) throw realmTaken(realm);
    const after: AccountRow = {
      ...before,
      name: valid.name,
      nameKey: nameKeyOf(valid.name),
      realm,
      extra: options.merge ? { ...before.extra, ...extraFields(body, ['name', 'realm']) } : extraFields(body, ['name', 'realm']),
      revision: nextRevision(before.revision),
      modified: now(),
    };
    await tx.updateAccount(after);
    await tx.recordChange('account', id, after.modified);
    await recordAudit(tx, actor, { accountId: id, action: 'update', resource: 'accounts', resourceId: id, before: presentAccount(before), after: presentAccount(after) });
    return after;
  });
}

export async function deleteAccount(ctx: ServiceContext, actor: Actor, id: string): Promise<AccountRow> {
  await findAccount(ctx, actor, id, 'write');
  return commit(ctx, async (tx) => {
    const account = await tx.getAccount(id);
    if (!account) throw notFound(id);
    if ((await tx.listChildren(id)).length > 0) throw new Failure('has_descendants', 'account_has_descendants', { cause: id });
    const at = now();
    for (const ip of await tx.listIps({ assignedTo: id })) await tx.releaseIpIfAssigned(ip.ip, id, nextRevision(ip.revision), at);
    const entries = await tx.listIpAcls({ accountId: id });
    await tx.deleteAccount(id);
    await tx.recordChange('account_deleted', id, at);
    await recordBlockChanges(tx, id, entries, at);
    await recordAudit(tx, actor, { accountId: account.parentId ?? id, action: 'delete', resource: 'accounts', resourceId: id, before: presentAccount(account) });
    return account;
  });
}

export async function listChildren(ctx: ServiceContext, actor: Actor, id: string): Promise<AccountRow[]> {
  await findAccount(ctx, actor, id, 'read');
  return ctx.store.read.listChildren(id);
}

export async function listDescendants(ctx: ServiceContext, actor: Actor, id: string): Promise<AccountRow[]> {
  const account = await findAccount(ctx, actor, id, 'read');
  return ctx.store.read.listDescendants(account.path);
}

/** api.md §2: readable by admins of the account and of its ancestors; each read is audited (issue 20). */
export async function readApiKey(ctx: ServiceContext, actor: Actor, id: string): Promise<string> {
  const account = await findAccount(ctx, actor, id, 'write');
  if (account.apiKeySealed === null) throw new Error(`the API key of ${id} is not sealed yet`);
  const apiKey = ctx.secrets.open(id, account.apiKeySealed);
  await ctx.store.transaction((tx) => recordAudit(tx, actor, { accountId: id, action: 'read', resource: 'api_key', resourceId: id }));
  return apiKey;
}

/**
 * `PUT …/api_key`: a new key, shown in this answer. The old one stops opening sessions at once on
 * every node (api_auth asks the database), and the sessions it opened end with it (other nodes
 * trust a verified token from memory for at most a second).
 */
export async function rotateApiKey(ctx: ServiceContext, actor: Actor, id: string): Promise<string> {
  await findAccount(ctx, actor, id, 'write');
  const { apiKey, apiKeyHash, apiKeySealed } = newApiKey(ctx, id);
  await ctx.store.transaction(async (tx) => {
    if (!(await tx.getAccount(id))) throw notFound(id);
    await tx.setApiKey(id, apiKeyHash, apiKeySealed);
    await tx.deleteApiKeyTokens(id);
    await recordAudit(tx, actor, { accountId: id, action: 'update', resource: 'api_key', resourceId: id });
  });
  return apiKey;
}
