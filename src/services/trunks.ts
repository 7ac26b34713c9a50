// Trunks and their IP ACL entries (seed 003, api.md §5): an active entry lets its source address
// authenticate the trunk without credentials. No active entry may overlap an active entry of
// another account (checked inside the writing transaction, so racing tenants cannot both win);
// within one account the longest prefix decides, and the same block on two trunks is refused.

import { broadcastOf, canonicalIp, formatCidr, isHostCidr, parseCidr, specialRangesOverlapping, type Cidr, type Ip } from '../core/ip.ts';
import type { IpAclRow, Json, Repository, TrunkRow } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { requireSuperduper } from './actor.ts';
import type { TrunkMatch } from './decision-types.ts';
import { assertRevision, findAccount } from './accounts.ts';
import { recordAudit } from './audit.ts';
import type { ServiceContext } from './context.ts';
import { caughtUp, commit } from './context.ts';
import { FieldErrorList, invalid, notFound } from './errors.ts';
import { newUuid, nextRevision, now, secondsTimestamp } from './identity.ts';
import { pace } from '../store/turns.ts';
import { check, IpAclSchema, TrunkSchema, validate } from './schemas.ts';
import { recordBlockChanges } from './trunk-blocks.ts';
import { assertNoCapture, assertRoom, ipAclBatch, presentIpAcl, revivedFailure, STORE_IP_ACL_BATCH, storeIpAclBatch, trunkOf } from './trunk-rules.ts';

export function presentTrunk(t: TrunkRow): Json {
  return { id: t.id, name: t.name, enabled: t.enabled, created: t.created, modified: t.modified };
}

export { presentIpAcl } from './trunk-rules.ts';

/** Ranges refused even when private trunk IPs are allowed (api.md §5). */
const ALWAYS_REFUSED = new Set(['unspecified', 'multicast', 'reserved', 'broadcast']);

function hex(ip: Ip): string {
  return ip.family === 4 ? ip.value.toString(16).padStart(8, '0') : ip.words.map((w) => w.toString(16).padStart(8, '0')).join('');
}

/** Validates `ip_address` (api.md §5) and gives its canonical text and range. */
function parseTrunkAddress(ctx: ServiceContext, actor: Actor, text: string, errors: FieldErrorList): { cidr: Cidr; text: string } | null {
  const parsed = parseCidr(text);
  if (!parsed.ok) {
    errors.add('ip_address', 'format', parsed.message, text);
    return null;
  }
  const cidr = parsed.cidr;
  const family = cidr.network.family;
  const minimum = family === 4 ? 16 : 32;
  if (cidr.prefix < minimum && !actor.superduper) {
    errors.add('ip_address', 'format', `a trunk block must be /${minimum} or narrower`, text);
    return null;
  }
  for (const range of specialRangesOverlapping(cidr)) {
    // Documentation ranges are accepted (the seed's own example is 203.0.113.50), so a block that
    // holds one is refused only for the other ranges it touches.
    if (range.kind === 'documentation') continue;
    if (ctx.allowPrivateTrunkIps && !ALWAYS_REFUSED.has(range.kind)) continue;
    errors.add('ip_address', 'forbidden', `${text} is not a public address: it is in ${range.text} (${range.kind.replace(/_/g, ' ')})`, text);
    return null;
  }
  return { cidr, text: isHostCidr(cidr) ? formatCidr(cidr).split('/')[0]! : formatCidr(cidr) };
}

async function findTrunk(ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string, access: 'read' | 'write'): Promise<TrunkRow> {
  await findAccount(ctx, actor, accountId, access);
  const trunk = await ctx.store.read.getTrunk(trunkId);
  if (!trunk || trunk.accountId !== accountId) throw notFound(trunkId);
  return trunk;
}

export async function createTrunk(ctx: ServiceContext, actor: Actor, accountId: string, body: Json): Promise<TrunkRow> {
  await findAccount(ctx, actor, accountId, 'write');
  const valid = check(TrunkSchema, body);
  return commit(ctx, async (tx) => {
    const at = now();
    const row: TrunkRow = { id: newUuid(), accountId, name: valid.name, enabled: valid.enabled ?? true, revision: nextRevision(), created: at, modified: at };
    await tx.insertTrunk(row);
    await recordAudit(tx, actor, { accountId, action: 'create', resource: 'trunks', resourceId: row.id, after: presentTrunk(row) });
    return row;
  });
}

export async function listTrunks(ctx: ServiceContext, actor: Actor, accountId: string): Promise<TrunkRow[]> {
  await findAccount(ctx, actor, accountId, 'read');
  return ctx.store.read.listTrunks(accountId);
}

export const getTrunk = (ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string) => findTrunk(ctx, actor, accountId, trunkId, 'read');

export async function updateTrunk(ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string, body: Json, options: { merge: boolean; expectedRevision?: string }): Promise<TrunkRow> {
  const current = await findTrunk(ctx, actor, accountId, trunkId, 'write');
  const valid = check(TrunkSchema, options.merge ? { ...presentTrunk(current), ...body } : body);
  return commit(ctx, async (tx) => {
    const before = await tx.getTrunk(trunkId);
    if (!before || before.accountId !== accountId) throw notFound(trunkId);
    assertRevision(before.revision, options.expectedRevision);
    const after: TrunkRow = { ...before, name: valid.name, enabled: valid.enabled ?? before.enabled, revision: nextRevision(before.revision), modified: now() };
    await tx.updateTrunk(after);
    if (after.enabled !== before.enabled) {
      const entries = await tx.listIpAcls({ trunkId });
      if (after.enabled) await assertNoCapture(tx, entries.filter((entry) => entry.enabled));
      await recordBlockChanges(tx, accountId, entries, after.modified);
    }
    await recordAudit(tx, actor, { accountId, action: 'update', resource: 'trunks', resourceId: trunkId, before: presentTrunk(before), after: presentTrunk(after) });
    return after;
  });
}

export async function deleteTrunk(ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string): Promise<TrunkRow> {
  await findTrunk(ctx, actor, accountId, trunkId, 'write');
  return commit(ctx, async (tx) => {
    const before = await tx.getTrunk(trunkId);
    if (!before || before.accountId !== accountId) throw notFound(trunkId);
    const entries = await tx.listIpAcls({ trunkId });
    await tx.deleteTrunk(trunkId);
    await recordBlockChanges(tx, accountId, entries, now());
    await recordAudit(tx, actor, { accountId, action: 'delete', resource: 'trunks', resourceId: trunkId, before: presentTrunk(before) });
    return before;
  });
}

type ValidIpAcl = { valid: { ip_address: string; description?: string; enabled?: boolean }; address: { cidr: Cidr; text: string } };

/** The entry `body` describes, or null with its problems added to `errors`. */
function checkIpAcl(ctx: ServiceContext, actor: Actor, body: unknown, errors: FieldErrorList): ValidIpAcl | null {
  if (!validate(IpAclSchema, body, errors)) return null;
  const address = parseTrunkAddress(ctx, actor, body.ip_address, errors);
  return address === null ? null : { valid: body, address };
}

/** A new entry's body, validated as a whole (schema and address rules), ready for `insertIpAcl`. */
export function parseIpAcl(ctx: ServiceContext, actor: Actor, body: Json): ValidIpAcl {
  const errors = new FieldErrorList();
  const parsed = checkIpAcl(ctx, actor, body, errors);
  errors.throwIfAny();
  return parsed!;
}

function newIpAclRow(trunkId: string, accountId: string, { valid, address }: ValidIpAcl, at: string): IpAclRow {
  return withAddress(
    { id: newUuid(), trunkId, accountId, ipAddress: '', family: 4, rangeLo: '', rangeHi: '', prefix: 0, description: valid.description ?? '', enabled: valid.enabled ?? true, revision: nextRevision(), createdAt: at, updatedAt: at },
    address,
  );
}

function withAddress(row: IpAclRow, address: { cidr: Cidr; text: string }): IpAclRow {
  const { cidr } = address;
  return {
    ...row,
    ipAddress: address.text,
    family: cidr.network.family,
    rangeLo: hex(cidr.network),
    rangeHi: hex(broadcastOf(cidr.network, cidr.prefix)),
    prefix: cidr.prefix,
  };
}

export async function createIpAcl(ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string, body: Json): Promise<IpAclRow> {
  await findAccount(ctx, actor, accountId, 'write');
  // The trunk is read once, in the transaction; a missing trunk answers 404 before a bad body 400.
  return commit(ctx, async (tx) => {
    const trunk = await trunkOf(tx, accountId, trunkId);
    return writeIpAcl(tx, ctx, actor, trunk, parseIpAcl(ctx, actor, body));
  });
}

/**
 * Writes a parsed entry inside the caller's transaction: the trunk's limit and the capture rule
 * are checked against what the transaction sees (its own earlier inserts included).
 */
export async function insertIpAcl(tx: Repository, ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string, parsed: ValidIpAcl): Promise<IpAclRow> {
  return writeIpAcl(tx, ctx, actor, await trunkOf(tx, accountId, trunkId), parsed);
}

async function writeIpAcl(tx: Repository, ctx: ServiceContext, actor: Actor, trunk: TrunkRow, parsed: ValidIpAcl): Promise<IpAclRow> {
  const { id: trunkId, accountId } = trunk;
  await assertRoom(tx, trunkId, 1, ctx.limits.maxIpAclsPerTrunk);
  const at = secondsTimestamp();
  const row = newIpAclRow(trunkId, accountId, parsed, at);
  if (row.enabled && trunk.enabled) await assertNoCapture(tx, [row]);
  await tx.insertIpAcl(row);
  await recordBlockChanges(tx, accountId, [row], at);
  await recordAudit(tx, actor, { accountId, action: 'create', resource: 'ip_acls', resourceId: row.id, after: presentIpAcl(row) });
  return row;
}

/**
 * Creates every entry of `items` in one transaction, or none (issue 23: a trunk's bulk load).
 * Problems come back all at once under `N.field` (N: the item's place); an overlap with another
 * account's active block is a 409 naming the item. With `dryRun` everything is checked, the
 * transaction rolled back, and the entries that would have been created returned.
 */
export async function createIpAcls(ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string, items: readonly unknown[], options: { dryRun?: boolean } = {}): Promise<IpAclRow[]> {
  await findTrunk(ctx, actor, accountId, trunkId, 'write');
  const limit = ctx.limits.maxIpAclsPerTrunk;
  if (items.length > limit) throw invalid({ data: { maxItems: { message: `a trunk holds at most ${limit} IP ACL entries`, value: limit } } });
  const errors = new FieldErrorList();
  const at = secondsTimestamp();
  const rows: IpAclRow[] = [];
  for (const [i, item] of items.entries()) {
    const itemErrors = new FieldErrorList();
    const entry = checkIpAcl(ctx, actor, item, itemErrors);
    if (entry) rows.push(newIpAclRow(trunkId, accountId, entry, at));
    for (const [field, rules] of Object.entries(itemErrors.fields)) for (const [rule, e] of Object.entries(rules)) errors.add(`${i}.${field}`, rule, e.message, e.value);
    await pace();
  }
  errors.throwIfAny();
  const batch = ipAclBatch(rows, { accountId, trunkId, limit, at, actor });
  const rollback = options.dryRun === true;
  const { store } = ctx;
  try {
    if (store.transactionAside) await store.transactionAside(STORE_IP_ACL_BATCH, batch, { rollback });
    else if (rollback) await store.transaction((tx) => storeIpAclBatch(tx, batch).then(() => Promise.reject(new DryRun())));
    else await store.transaction((tx) => storeIpAclBatch(tx, batch));
  } catch (error) {
    if (!(error instanceof DryRun)) throw revivedFailure(error);
  }
  if (!rollback) await caughtUp(ctx);
  return rows;
}

/** Thrown to roll a dry run back once everything has been checked. */
class DryRun extends Error {}

export async function listIpAcls(ctx: ServiceContext, actor: Actor, accountId: string, trunkId?: string): Promise<IpAclRow[]> {
  if (trunkId !== undefined) await findTrunk(ctx, actor, accountId, trunkId, 'read');
  else await findAccount(ctx, actor, accountId, 'read');
  return ctx.store.read.listIpAcls({ accountId, ...(trunkId === undefined ? {} : { trunkId }) });
}

export async function getIpAcl(ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string, id: string): Promise<IpAclRow> {
  await findTrunk(ctx, actor, accountId, trunkId, 'read');
  const row = await ctx.store.read.getIpAcl(id);
  if (!row || row.trunkId !== trunkId) throw notFound(id);
  return row;
}

export async function updateIpAcl(ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string, id: string, body: Json, options: { merge: boolean; expectedRevision?: string }): Promise<IpAclRow> {
  const current = await getIpAcl(ctx, actor, accountId, trunkId, id);
  await findAccount(ctx, actor, accountId, 'write');
  const { valid, address } = parseIpAcl(ctx, actor, options.merge ? { ...presentIpAcl(current), ...body } : body);
  return commit(ctx, async (tx) => {
    const before = await tx.getIpAcl(id);
    if (!before || before.trunkId !== trunkId) throw notFound(id);
    assertRevision(before.revision, options.expectedRevision);
    const trunk = (await tx.getTrunk(trunkId))!;
    const after = withAddress(
      { ...before, description: valid.description ?? (options.merge ? before.description : ''), enabled: valid.enabled ?? (options.merge ? before.enabled : true), revision: nextRevision(before.revision), updatedAt: secondsTimestamp() },
      address,
    );
    if (after.enabled && trunk.enabled) await assertNoCapture(tx, [after]);
    await tx.updateIpAcl(after);
    await recordBlockChanges(tx, accountId, [before, after], after.updatedAt);
    await recordAudit(tx, actor, { accountId, action: 'update', resource: 'ip_acls', resourceId: id, before: presentIpAcl(before), after: presentIpAcl(after) });
    return after;
  });
}

export async function deleteIpAcl(ctx: ServiceContext, actor: Actor, accountId: string, trunkId: string, id: string): Promise<IpAclRow> {
  await getIpAcl(ctx, actor, accountId, trunkId, id);
  await findAccount(ctx, actor, accountId, 'write');
  return commit(ctx, async (tx) => {
    const before = await tx.getIpAcl(id);
    if (!before || before.trunkId !== trunkId) throw notFound(id);
    await tx.deleteIpAcl(id);
    await recordBlockChanges(tx, accountId, [before], now());
    await recordAudit(tx, actor, { accountId, action: 'delete', resource: 'ip_acls', resourceId: id, before: presentIpAcl(before) });
    return before;
  });
}

/** What an edge asks (api.md §5): the active entry `ip` authenticates, from the in-memory index. */
export function lookupTrunk(ctx: ServiceContext, actor: Actor, ip: string | undefined): TrunkMatch {
  requireSuperduper(actor);
  if (!ip) throw invalid({ ip: { required: { message: 'Field is required but missing', target: 'query' } } });
  if (canonicalIp(ip) === null) throw invalid({ ip: { format: { message: `'${ip}' is not an IPv4 or IPv6 address`, value: ip, target: 'query' } } });
  const match = ctx.decisions.lookupTrunk(ip);
  if (!match) throw notFound(ip);
  return match;
}
