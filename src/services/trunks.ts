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
import { auditEntry, recordAudit } from './audit.ts';
import type { ServiceContext } from './context.ts';
import { commit } from './context.ts';
import { conflict, FieldErrorList, invalid, notFound } from './errors.ts';
import { newUuid, nextRevision, now, secondsTimestamp } from './identity.ts';
import { Pacer } from './pacing.ts';
import { check, IpAclSchema, TrunkSchema, validate } from './schemas.ts';
import { blockSubject, recordBlockChanges } from './trunk-blocks.ts';

export function presentTrunk(t: TrunkRow): Json {
  return { id: t.id, name: t.name, enabled: t.enabled, created: t.created, modified: t.modified };
}

/** Exactly the seed's object. */
export function presentIpAcl(r: IpAclRow): Json {
  return { id: r.id, trunk_id: r.trunkId, ip_address: r.ipAddress, description: r.description, enabled: r.enabled, created_at: r.createdAt, updated_at: r.updatedAt };
}

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

/**
 * The first of `rows` (active entries of one account, about to be written) that would capture
 * another account's traffic, or repeat this account's block of another trunk; null when none.
 * One query for the lot (a bulk load of a trunk costs a few queries, not one per entry).
 */
async function findCapture(tx: Repository, rows: readonly IpAclRow[]): Promise<{ index: number; message: string } | null> {
  const ids = new Set(rows.map((r) => r.id));
  const blocks = new Map(rows.map((r, i) => [blockSubject(r), i]));
  for (const family of [4, 6] as const) {
    const ranges = rows.filter((r) => r.family === family).map((r) => ({ lo: r.rangeLo, hi: r.rangeHi }));
    if (ranges.length === 0) continue;
    for (const other of await tx.findActiveOverlapsAny(family, ranges)) {
      if (ids.has(other.id)) continue;
      if (other.accountId !== rows[0]!.accountId) {
        const index = rows.findIndex((r) => r.family === family && r.rangeLo <= other.rangeHi && r.rangeHi >= other.rangeLo);
        return { index, message: `${rows[index]!.ipAddress} overlaps an address authenticating another account` };
      }
      const index = blocks.get(blockSubject(other));
      if (index !== undefined && other.trunkId !== rows[index]!.trunkId) return { index, message: `${rows[index]!.ipAddress} already authenticates trunk ${other.trunkId}` };
    }
  }
  return null;
}

/** Refuses an active block that overlaps another account's active block, or this account's same block on another trunk. */
async function assertNoCapture(tx: Repository, entries: readonly IpAclRow[]): Promise<void> {
  const capture = await findCapture(tx, entries);
  if (capture) throw conflict('conflicting documents', capture.message);
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

/** api.md §5: a trunk holds at most the limit's entries. */
async function assertRoom(ctx: ServiceContext, tx: Repository, trunkId: string, adding: number): Promise<void> {
  const limit = ctx.limits.maxIpAclsPerTrunk;
  if ((await tx.countIpAcls(trunkId)) + adding > limit) {
    throw invalid({ ip_acls: { maxItems: { message: `a trunk holds at most ${limit} IP ACL entries`, value: limit } } });
  }
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

async function trunkOf(tx: Repository, accountId: string, trunkId: string): Promise<TrunkRow> {
  const trunk = await tx.getTrunk(trunkId);
  if (!trunk || trunk.accountId !== accountId) throw notFound(trunkId);
  return trunk;
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
  await assertRoom(ctx, tx, trunkId, 1);
  const at = secondsTimestamp();
  const row = newIpAclRow(trunkId, accountId, parsed, at);
  if (row.enabled && trunk.enabled) await assertNoCapture(tx, [row]);
  await tx.insertIpAcl(row);
  await recordBlockChanges(tx, accountId, [row], at);
  await recordAudit(tx, actor, { accountId, action: 'create', resource: 'ip_acls', resourceId: row.id, after: presentIpAcl(row) });
  return row;
}

/** Entries written between two chances for the event loop (SQLite writes block it). */
const WRITE_SLICE = 200;

/** Thrown to roll a dry run back once everything has been checked. */
class DryRun extends Error {
  constructor(readonly rows: IpAclRow[]) {
    super('dry run');
  }
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
  const pacer = new Pacer();
  const errors = new FieldErrorList();
  const parsed: ValidIpAcl[] = [];
  for (const [i, item] of items.entries()) {
    const itemErrors = new FieldErrorList();
    const entry = checkIpAcl(ctx, actor, item, itemErrors);
    if (entry) parsed.push(entry);
    for (const [field, rules] of Object.entries(itemErrors.fields)) for (const [rule, e] of Object.entries(rules)) errors.add(`${i}.${field}`, rule, e.message, e.value);
    await pacer.pause();
  }
  errors.throwIfAny();
  const write = async (tx: Repository) => {
    const trunk = await trunkOf(tx, accountId, trunkId);
    await assertRoom(ctx, tx, trunkId, parsed.length);
    const at = secondsTimestamp();
    const rows = parsed.map((p) => newIpAclRow(trunkId, accountId, p, at));
    // The batch is one account's, on one trunk: its entries cannot capture one another.
    const active = trunk.enabled ? rows.filter((row) => row.enabled) : [];
    const capture = await findCapture(tx, active);
    if (capture) throw conflict('conflicting documents', `${rows.indexOf(active[capture.index]!)}.ip_address: ${capture.message}`);
    for (let i = 0; i < rows.length; i += WRITE_SLICE) {
      await pacer.pause();
      const slice = rows.slice(i, i + WRITE_SLICE);
      await tx.insertIpAcls(slice);
      await recordBlockChanges(tx, accountId, slice, at);
      await tx.insertAudits(slice.map((row) => auditEntry(actor, { accountId, action: 'create', resource: 'ip_acls', resourceId: row.id, after: presentIpAcl(row) })));
    }
    if (options.dryRun) throw new DryRun(rows);
    return rows;
  };
  if (!options.dryRun) return commit(ctx, write);
  try {
    return await ctx.store.transaction(write);
  } catch (error) {
    if (error instanceof DryRun) return error.rows;
    throw error;
  }
}

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
