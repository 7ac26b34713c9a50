// Dedicated IPs (seed 000, api.md §3): a pool the superduper admin fills, from which accounts take
// IPs for their outbound calls. Assigning a list is all or nothing in one transaction, each IP
// taken with a conditional update, so two accounts racing for one IP cannot both win.

import { canonicalIp, compareIp, parseIp } from '../core/ip.ts';
import type { IpFilter, IpRow, Json, Repository } from '../store/port.ts';
import { UniqueViolationError } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { requireSuperduper } from './actor.ts';
import { findAccount } from './accounts.ts';
import { recordAudit } from './audit.ts';
import type { ServiceContext } from './context.ts';
import { commit } from './context.ts';
import { conflict, Failure, FieldErrorList, invalid, notFound } from './errors.ts';
import { nextRevision, now } from './identity.ts';
import { check, IpListSchema, PoolIpSchema, PoolIpUpdateSchema } from './schemas.ts';

/** The "clean ip" of api.md §3. */
export function presentIp(r: IpRow): Json {
  const doc: Json = { id: r.ip, ip: r.ip, zone: r.zone, host: r.host, status: r.assignedTo === null ? 'available' : 'assigned', type: 'dedicated_ip' };
  if (r.assignedTo !== null) doc.assigned_to = r.assignedTo;
  return doc;
}

/**
 * Pool rows in address order (IPv4 numerically, then IPv6), whatever the database's text
 * collation: SQLite orders '10.0.0.10' before '5.6.7.8', PostgreSQL's locale collations differ again.
 */
export function sortByAddress(rows: IpRow[]): IpRow[] {
  const keyed = rows.map((row) => ({ row, ip: parseIp(row.ip) }));
  keyed.sort((a, b) => (a.ip && b.ip ? compareIp(a.ip, b.ip) : a.row.ip < b.row.ip ? -1 : a.row.ip > b.row.ip ? 1 : 0));
  return keyed.map((k) => k.row);
}

/**
 * Every pool write is in the change feed, so each node's view of who holds which IP (the SIP
 * edge's egress, api.md §7.1) follows it as the decision index does (§6).
 */
function poolChanged(tx: Repository, at: string): Promise<void> {
  return tx.recordChange('ips', null, at);
}

export function presentBrief(r: IpRow): Json {
  return { ip: r.ip, zone: r.zone };
}

function trimmed(body: Json): Json {
  const copy: Json = { ...body };
  for (const key of ['ip', 'zone', 'host']) if (typeof copy[key] === 'string') copy[key] = (copy[key] as string).trim();
  return copy;
}

/** Canonical text of an IP given by a client, or a 400 naming `field`. */
function canonicalOrFail(text: string, field: string, errors?: FieldErrorList): string | null {
  const ip = canonicalIp(text);
  if (ip === null) {
    const list = errors ?? new FieldErrorList();
    list.add(field, 'format', `'${text}' is not an IPv4 or IPv6 address`, text);
    if (!errors) list.throwIfAny();
  }
  return ip;
}

/**
 * The pool is the system's, so its changes (issue 20) are recorded under the superduper master
 * account, where its admins read them (under the actor's own id before any account exists).
 */
async function auditPool(tx: Repository, actor: Actor, action: 'create' | 'update' | 'delete', before: IpRow | null, after: IpRow | null): Promise<void> {
  const accountId = (await tx.getMasterAccount())?.id ?? actor.accountId;
  const ip = (after ?? before)!.ip;
  await recordAudit(tx, actor, { accountId, action, resource: 'ips', resourceId: ip, before: before && presentIp(before), after: after && presentIp(after) });
}

/** `viaAccountId`: added through an account's path (the seed's own example), which must exist. */
export async function addPoolIp(ctx: ServiceContext, actor: Actor, body: Json, viaAccountId?: string): Promise<IpRow> {
  if (viaAccountId !== undefined) await findAccount(ctx, actor, viaAccountId, 'read');
  requireSuperduper(actor);
  const valid = check(PoolIpSchema, trimmed(body));
  const ip = canonicalOrFail(valid.ip, 'ip')!;
  return commit(ctx, async (tx) => {
    if (await tx.getIp(ip)) throw conflict('conflicting documents', ip);
    const at = now();
    const row: IpRow = { ip, zone: valid.zone, host: valid.host, assignedTo: null, revision: nextRevision(), created: at, modified: at };
    try {
      await tx.insertIp(row);
    } catch (error) {
      if (error instanceof UniqueViolationError) throw conflict('conflicting documents', ip);
      throw error;
    }
    await auditPool(tx, actor, 'create', null, row);
    await poolChanged(tx, at);
    return row;
  });
}

/** `ips import`: every row validated first; nothing is written unless all pass. */
export async function importPoolIps(ctx: ServiceContext, actor: Actor, rows: { line: number; ip: string; zone: string; host: string }[]): Promise<IpRow[]> {
  requireSuperduper(actor);
  const problems: string[] = [];
  const seen = new Set<string>();
  const parsed = rows.map((r) => {
    const errors = new FieldErrorList();
    const body = trimmed({ ip: r.ip, zone: r.zone, host: r.host }) as { ip: string; zone: string; host: string };
    try {
      check(PoolIpSchema, body);
    } catch (error) {
      if (error instanceof Failure) for (const field of Object.keys(error.details.fields ?? {})) errors.add(field, 'invalid', `${field} is missing or invalid`);
    }
    const ip = canonicalIp(body.ip);
    if (ip === null) errors.add('ip', 'format', `'${r.ip}' is not an IPv4 or IPv6 address`);
    else if (seen.has(ip)) errors.add('ip', 'unique', `${ip} appears twice in the file`);
    else seen.add(ip);
    for (const [field, rules] of Object.entries(errors.fields)) for (const rule of Object.values(rules)) problems.push(`line ${r.line}: ${field}: ${rule.message}`);
    return { ...body, ip: ip ?? body.ip };
  });
  if (problems.length > 0) throw new Failure('validation', problems.join('\n'));
  return commit(ctx, async (tx) => {
    const at = now();
    const added: IpRow[] = [];
    for (const [i, r] of parsed.entries()) {
      if (await tx.getIp(r.ip)) throw new Failure('conflict', `line ${rows[i]!.line}: ${r.ip} is already in the pool`, { cause: r.ip });
      const row: IpRow = { ip: r.ip, zone: r.zone, host: r.host, assignedTo: null, revision: nextRevision(), created: at, modified: at };
      await tx.insertIp(row);
      await auditPool(tx, actor, 'create', null, row);
      added.push(row);
    }
    await poolChanged(tx, at);
    return added;
  });
}

/** The pool's filters (api.md §3); a status other than `available` or `assigned` filters nothing. */
export type PoolQuery = { zone?: string; host?: string; status?: string };

export async function listPool(ctx: ServiceContext, actor: Actor, query: PoolQuery): Promise<IpRow[]> {
  requireSuperduper(actor);
  const filter: IpFilter = {};
  if (query.zone) filter.zone = query.zone;
  if (query.host) filter.host = query.host;
  if (query.status === 'available' || query.status === 'assigned') filter.status = query.status;
  return sortByAddress(await ctx.store.read.listIps(filter));
}

/** The pool's distinct hosts or zones: the whole pool's for a superduper admin, or asked through an account its readers may see. */
export async function poolHostsOrZones(ctx: ServiceContext, actor: Actor, field: 'host' | 'zone', viaAccountId?: string): Promise<string[]> {
  if (viaAccountId === undefined) requireSuperduper(actor);
  else await findAccount(ctx, actor, viaAccountId, 'read');
  const rows = await ctx.store.read.listIps({});
  return [...new Set(rows.map((r) => r[field]))].sort();
}

export async function getPoolIp(ctx: ServiceContext, actor: Actor, text: string): Promise<IpRow> {
  requireSuperduper(actor);
  const ip = canonicalIp(text);
  const row = ip === null ? undefined : await ctx.store.read.getIp(ip);
  if (!row) throw notFound(text);
  return row;
}

export async function updatePoolIp(ctx: ServiceContext, actor: Actor, text: string, body: Json): Promise<IpRow> {
  const current = await getPoolIp(ctx, actor, text);
  const valid = check(PoolIpUpdateSchema, trimmed(body));
  return commit(ctx, async (tx) => {
    const before = (await tx.getIp(current.ip)) ?? current;
    const after: IpRow = { ...before, zone: valid.zone ?? before.zone, host: valid.host ?? before.host, revision: nextRevision(before.revision), modified: now() };
    await tx.updateIp(after);
    await auditPool(tx, actor, 'update', before, after);
    await poolChanged(tx, after.modified);
    return after;
  });
}

export async function deletePoolIp(ctx: ServiceContext, actor: Actor, text: string): Promise<IpRow> {
  const current = await getPoolIp(ctx, actor, text);
  return commit(ctx, async (tx) => {
    const row = await tx.getIp(current.ip);
    if (!row) throw notFound(text);
    if (row.assignedTo !== null) throw invalid({ ip: { forbidden: { message: 'ip is assigned to an account: release it first', value: row.ip } } });
    await tx.deleteIp(row.ip);
    await auditPool(tx, actor, 'delete', row, null);
    await poolChanged(tx, now());
    return row;
  });
}

/** Available IPs, sorted, local zone first when this node knows its zone. */
export async function listAvailable(ctx: ServiceContext, actor: Actor, accountId: string, options: { zone?: string; quantity?: number }): Promise<IpRow[]> {
  await findAccount(ctx, actor, accountId, 'read');
  const rows = sortByAddress(await ctx.store.read.listIps({ status: 'available', ...(options.zone === undefined ? {} : { zone: options.zone }) }));
  return options.quantity === undefined ? rows : rows.slice(0, options.quantity);
}

export async function listAssigned(ctx: ServiceContext, actor: Actor, accountId: string): Promise<IpRow[]> {
  await findAccount(ctx, actor, accountId, 'read');
  return assignedOrder(await ctx.store.read.listIps({ assignedTo: accountId }), ctx.localZone);
}

/** An account's IPs as `/ips/assigned` lists them: by address, this node's zone first. */
export function assignedOrder(rows: IpRow[], localZone: string | undefined): IpRow[] {
  const sorted = sortByAddress(rows);
  if (localZone === undefined) return sorted;
  return [...sorted.filter((r) => r.zone === localZone), ...sorted.filter((r) => r.zone !== localZone)];
}

/** An account sees an IP only if it is available or assigned to it or a descendant (api.md §3). */
export async function getAccountIp(ctx: ServiceContext, actor: Actor, accountId: string, text: string): Promise<IpRow> {
  const account = await findAccount(ctx, actor, accountId, 'read');
  const ip = canonicalIp(text);
  const row = ip === null ? undefined : await ctx.store.read.getIp(ip);
  if (!row) throw notFound(text);
  if (row.assignedTo === null || row.assignedTo === accountId) return row;
  const owner = await ctx.store.read.getAccount(row.assignedTo);
  if (owner && owner.path.startsWith(account.path)) return row;
  throw notFound(text);
}

/** Per-IP failure under `ips.N` (api.md §3), decided inside the transaction. */
async function assignOne(tx: Repository, accountId: string, ip: string, field: string, errors: FieldErrorList, at: string): Promise<IpRow | null> {
  const row = await tx.getIp(ip);
  if (!row) {
    errors.add(field, 'not_found', 'ip not found', ip);
    return null;
  }
  if (row.assignedTo === accountId) {
    errors.add(field, 'superfluous', 'ip already assigned', ip);
    return null;
  }
  const revision = nextRevision(row.revision);
  if (row.assignedTo !== null || !(await tx.assignIpIfAvailable(ip, accountId, revision, at))) {
    errors.add(field, 'forbidden', 'ip assigned to another account', ip);
    return null;
  }
  return { ...row, assignedTo: accountId, revision, modified: at };
}

export async function assignIps(ctx: ServiceContext, actor: Actor, accountId: string, body: Json, field = 'ips'): Promise<IpRow[]> {
  await findAccount(ctx, actor, accountId, 'write');
  const valid = check(IpListSchema, body);
  const errors = new FieldErrorList();
  const ips = valid.ips.map((text, i) => canonicalOrFail(text, `${field}.${i}`, errors));
  errors.throwIfAny();
  return commit(ctx, async (tx) => {
    const at = now();
    const assigned: IpRow[] = [];
    for (const [i, ip] of ips.entries()) {
      const row = await assignOne(tx, accountId, ip!, `${field}.${i}`, errors, at);
      if (row) assigned.push(row);
    }
    // All or nothing: throwing rolls the whole transaction back.
    errors.throwIfAny();
    await poolChanged(tx, at);
    for (const row of assigned) await recordAudit(tx, actor, { accountId, action: 'update', resource: 'ips', resourceId: row.ip, after: presentIp(row) });
    return assigned;
  });
}

export async function assignIp(ctx: ServiceContext, actor: Actor, accountId: string, text: string): Promise<IpRow> {
  await findAccount(ctx, actor, accountId, 'write');
  const ip = canonicalIp(text);
  if (ip === null) throw notFound(text);
  return commit(ctx, async (tx) => {
    const errors = new FieldErrorList();
    const row = await assignOne(tx, accountId, ip, 'ip', errors, now());
    if (errors.fields.ip?.not_found) throw notFound(text);
    errors.throwIfAny();
    await poolChanged(tx, row!.modified);
    await recordAudit(tx, actor, { accountId, action: 'update', resource: 'ips', resourceId: ip, after: presentIp(row!) });
    return row!;
  });
}

/** Releases the listed IPs, or every IP of the account when `ips` is undefined. */
export async function releaseIps(ctx: ServiceContext, actor: Actor, accountId: string, ips: string[] | undefined): Promise<IpRow[]> {
  await findAccount(ctx, actor, accountId, 'write');
  const errors = new FieldErrorList();
  const wanted = ips?.map((text, i) => canonicalOrFail(text, `ips.${i}`, errors));
  errors.throwIfAny();
  return commit(ctx, async (tx) => {
    const at = now();
    const targets = wanted ?? (await tx.listIps({ assignedTo: accountId })).map((r) => r.ip);
    const released: IpRow[] = [];
    for (const [i, ip] of targets.entries()) {
      const row = await tx.getIp(ip!);
      if (!row) {
        errors.add(`ips.${i}`, 'not_found', 'ip not found', ip);
        continue;
      }
      const revision = nextRevision(row.revision);
      if (!(await tx.releaseIpIfAssigned(row.ip, accountId, revision, at))) {
        errors.add(`ips.${i}`, 'superfluous', 'ip not assigned', ip);
        continue;
      }
      released.push({ ...row, assignedTo: null, revision, modified: at });
    }
    errors.throwIfAny();
    await poolChanged(tx, at);
    for (const row of released) await recordAudit(tx, actor, { accountId, action: 'update', resource: 'ips', resourceId: row.ip, after: presentIp(row) });
    return released;
  });
}

export async function releaseIp(ctx: ServiceContext, actor: Actor, accountId: string, text: string): Promise<IpRow> {
  await findAccount(ctx, actor, accountId, 'write');
  const ip = canonicalIp(text);
  const row = ip === null ? undefined : await ctx.store.read.getIp(ip);
  if (!row || (row.assignedTo !== null && row.assignedTo !== accountId)) throw notFound(text);
  const [released] = await releaseIps(ctx, actor, accountId, [row.ip]).catch((error: unknown) => {
    if (error instanceof Failure && error.kind === 'validation') throw invalid({ ip: { superfluous: { message: 'ip not assigned', value: row.ip } } });
    throw error;
  });
  return released!;
}

/** CLI `ips assign` / `ips release`: the system acts for the account the IP is (to be) with. */
export async function releaseIpAnywhere(ctx: ServiceContext, actor: Actor, text: string): Promise<IpRow> {
  const row = await getPoolIp(ctx, actor, text);
  if (row.assignedTo === null) throw invalid({ ip: { superfluous: { message: 'ip not assigned', value: row.ip } } });
  return releaseIp(ctx, actor, row.assignedTo, row.ip);
}
