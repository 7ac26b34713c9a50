// Access lists of accounts and devices (api.md §4): validated as a whole (schema, then every CIDR
// and the user-agent pattern, all errors at once), stored as given, and enforced by the decision
// index, which catches up before the write is acknowledged.

import type { AccessList } from '../core/acl.ts';
import { checkUserAgent } from '../core/acl.ts';
import { parseCidr } from '../core/ip.ts';
import type { AccountDecision, RealmDecision } from '../core/index.ts';
import type { Json, Repository } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { authorize, requireSuperduper } from './actor.ts';
import { findAccount } from './accounts.ts';
import { recordAudit } from './audit.ts';
import type { ServiceContext } from './context.ts';
import { commit } from './context.ts';
import { FieldErrorList, invalid, notFound } from './errors.ts';
import { nextRevision, now } from './identity.ts';
import { accessListSchema, validate } from './schemas.ts';

/** Adds the problems of a list's CIDRs and pattern to `errors` under `prefix` (e.g. 'access_lists.'). */
export function checkAccessListContent(list: AccessList, errors: FieldErrorList, prefix = ''): void {
  list.cidrs.forEach((text, i) => {
    const parsed = parseCidr(text);
    if (!parsed.ok) errors.add(`${prefix}cidrs.${i}`, 'format', parsed.message, text);
  });
  if (list.user_agent !== undefined) {
    const pattern = checkUserAgent(list.user_agent);
    if (!pattern.ok) errors.add(`${prefix}user_agent`, 'format', pattern.message, list.user_agent);
  }
}

/** The stored form: exactly the three fields, unknown ones dropped (api.md §1). */
export function normaliseAccessList(list: AccessList): AccessList {
  const stored: AccessList = { order: list.order, cidrs: [...list.cidrs] };
  if (list.user_agent !== undefined) stored.user_agent = list.user_agent;
  return stored;
}

/**
 * When the schema already failed (say, a bad `order`), the CIDRs and the pattern that are at least
 * strings are still checked, so the client sees every failing field at once (api.md §1).
 */
function checkPartialContent(ctx: ServiceContext, body: unknown, errors: FieldErrorList): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
  const { cidrs, user_agent } = body as { cidrs?: unknown; user_agent?: unknown };
  const list: AccessList = { order: 'allow,deny', cidrs: [] };
  if (Array.isArray(cidrs) && cidrs.length <= ctx.limits.maxCidrs) {
    cidrs.forEach((text, i) => {
      if (typeof text !== 'string' || text.length > 64) return;
      const parsed = parseCidr(text);
      if (!parsed.ok) errors.add(`cidrs.${i}`, 'format', parsed.message, text);
    });
  }
  if (typeof user_agent === 'string' && user_agent.length <= 1024) list.user_agent = user_agent;
  checkAccessListContent(list, errors);
}

/** Validates a body as an access list: every schema and content problem at once. */
export function parseAccessList(ctx: ServiceContext, body: unknown): AccessList {
  const errors = new FieldErrorList();
  const schema = accessListSchema(ctx.limits);
  const valid = validate(schema, body, errors);
  if (valid) checkAccessListContent(body, errors);
  else checkPartialContent(ctx, body, errors);
  errors.throwIfAny();
  return normaliseAccessList(body as AccessList);
}

export function presentAccessList(list: AccessList | null): Json {
  return list ? { ...list } : {};
}

export type ListOwner = { accountId: string; deviceId?: string };

export async function getAccessList(ctx: ServiceContext, actor: Actor, owner: ListOwner): Promise<AccessList | null> {
  if (owner.deviceId === undefined) {
    const indexed = accessListFromIndex(ctx, actor, owner.accountId);
    if (indexed !== undefined) return indexed;
  }
  const account = await findAccount(ctx, actor, owner.accountId, 'read');
  if (owner.deviceId === undefined) return account.accessList;
  const device = await ctx.store.read.getDevice(owner.deviceId);
  if (!device || device.accountId !== owner.accountId) throw notFound(owner.deviceId);
  return device.accessList;
}

/** Replaces (or, with `null`, removes) the list of an account or a device. */
export async function setAccessList(ctx: ServiceContext, actor: Actor, owner: ListOwner, body: unknown | null): Promise<AccessList | null> {
  await findAccount(ctx, actor, owner.accountId, 'write');
  if (owner.deviceId !== undefined) {
    const device = await ctx.store.read.getDevice(owner.deviceId);
    if (!device || device.accountId !== owner.accountId) throw notFound(owner.deviceId);
  }
  const list = body === null ? null : parseAccessList(ctx, body);
  return commit(ctx, (tx) => writeAccessList(tx, actor, owner, list));
}

/** Stores a parsed list (or none) inside the caller's transaction, audited and announced. */
export async function writeAccessList(tx: Repository, actor: Actor, owner: ListOwner, list: AccessList | null): Promise<AccessList | null> {
  const at = now();
  let before: AccessList | null;
  if (owner.deviceId === undefined) {
    const account = await tx.getAccount(owner.accountId);
    if (!account) throw notFound(owner.accountId);
    before = account.accessList;
    await tx.updateAccount({ ...account, accessList: list, revision: nextRevision(account.revision), modified: at });
  } else {
    const device = await tx.getDevice(owner.deviceId);
    if (!device || device.accountId !== owner.accountId) throw notFound(owner.deviceId);
    before = device.accessList;
    await tx.updateDevice({ ...device, accessList: list, revision: nextRevision(device.revision), modified: at });
  }
  await tx.recordChange('account', owner.accountId, at);
  await recordAudit(tx, actor, {
    accountId: owner.accountId,
    action: list === null ? 'delete' : before === null ? 'create' : 'update',
    resource: 'access_lists',
    resourceId: owner.deviceId ?? owner.accountId,
    before: before === null ? null : presentAccessList(before),
    after: list === null ? null : presentAccessList(list),
  });
  return list;
}

/** The 400 for a source that is no IPv4 or IPv6 address. */
const notAnAddress = (ip: string) => invalid({ ip: { format: { message: `'${ip}' is not an IPv4 or IPv6 address`, value: ip, target: 'query' } } });

const requiredInQuery = (names: readonly string[]) => invalid(Object.fromEntries(names.map((name) => [name, { required: { message: 'Field is required but missing', target: 'query' } }])));

export type CheckQuery = { ip?: string; user_agent?: string; device_id?: string };
export type DecideQuery = { ip?: string; realm?: string; username?: string; user_agent?: string };

// The decision API (api.md §4) is answered from memory alone, authorisation included: the index
// knows every account's place in the hierarchy and every device, as of the last applied change.
// The `…FromIndex` functions never wait, so the HTTP fast path (api/fast-path.ts) calls them too.

/** Which rule decided, for the account and (when asked) the device; 404 for what the index does not know. */
export function checkFromIndex(ctx: ServiceContext, actor: Actor, accountId: string, query: CheckQuery): AccountDecision {
  const path = ctx.decisions.accountPath(accountId);
  if (path === undefined) throw notFound(accountId);
  authorize(actor, { path }, 'read');
  if (query.ip === undefined || query.ip === '') throw requiredInQuery(['ip']);
  if (query.device_id !== undefined && !ctx.decisions.hasDevice(accountId, query.device_id)) throw notFound(query.device_id);
  const verdict = ctx.decisions.decide(accountId, query.device_id, query.ip, query.user_agent ?? '');
  if (verdict === null) throw notAnAddress(query.ip);
  return verdict;
}

export async function checkAccess(ctx: ServiceContext, actor: Actor, accountId: string, query: CheckQuery): Promise<AccountDecision> {
  // An account or device written through another node a moment ago may not be indexed here yet:
  // catch up with the change feed before answering 404 (the next write's decisions see it anyway).
  if (ctx.decisions.accountPath(accountId) === undefined || (query.device_id !== undefined && !ctx.decisions.hasDevice(accountId, query.device_id))) {
    await ctx.decisions.catchUp().catch(() => ctx.decisions.markStale());
  }
  return checkFromIndex(ctx, actor, accountId, query);
}

/** The decision an edge asks for, by realm and SIP username: for a superduper admin only. */
export function decideFromIndex(ctx: ServiceContext, actor: Actor, query: DecideQuery): RealmDecision {
  requireSuperduper(actor);
  const missing = (['ip', 'realm'] as const).filter((name) => !query[name]);
  if (missing.length > 0) throw requiredInQuery(missing);
  return ctx.decisions.decideByRealm(query.ip!, query.realm!, query.username ?? '', query.user_agent ?? '');
}

/**
 * An account's list as the index holds it (null: none), which every write applies before it
 * answers; undefined when the index cannot say (an unknown account, or an index that may be
 * behind the database): then getAccessList reads the database.
 */
export function accessListFromIndex(ctx: ServiceContext, actor: Actor, accountId: string): AccessList | null | undefined {
  const stored = ctx.decisions.storedAccessList(accountId);
  const path = ctx.decisions.accountPath(accountId);
  if (stored === undefined || path === undefined) return undefined;
  authorize(actor, { path }, 'read');
  return stored;
}
