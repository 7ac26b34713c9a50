// The audit trail (api.md §2): written in the same transaction as the change it records, under
// the account whose data changed. Documents passed here are the public forms: no secrets.

import type { AuditRow, Json, Repository } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { auditActor, authorize } from './actor.ts';
import type { ServiceContext } from './context.ts';
import { notFound } from './errors.ts';
import { newTimeOrderedUuid, now } from './identity.ts';

/**
 * api.md §2's resources, whose data changes; and (issue 20) `api_key` (read, or rotated: update),
 * `user_auth` / `api_auth` (a login) and `token_auth` (a logout).
 */
export type AuditResource = 'accounts' | 'users' | 'devices' | 'ips' | 'access_lists' | 'trunks' | 'ip_acls' | 'api_key' | 'user_auth' | 'api_auth' | 'token_auth';

export interface AuditEntry {
  accountId: string;
  action: AuditRow['action'];
  resource: AuditResource;
  resourceId: string;
  before?: Json | null;
  after?: Json | null;
}

/** The stored row of an audit entry (for writing many at once). */
export function auditEntry(actor: Actor, entry: AuditEntry): Omit<AuditRow, 'seq'> {
  return {
    id: newTimeOrderedUuid(),
    timestamp: now(),
    accountId: entry.accountId,
    actor: auditActor(actor),
    action: entry.action,
    resource: entry.resource,
    resourceId: entry.resourceId,
    before: entry.before ?? null,
    after: entry.after ?? null,
  };
}

export async function recordAudit(tx: Repository, actor: Actor, entry: AuditEntry): Promise<void> {
  await tx.insertAudit(auditEntry(actor, entry));
}

export function presentAudit(row: AuditRow): Json {
  const doc: Json = {
    id: row.id,
    timestamp: row.timestamp,
    account_id: row.accountId,
    actor: row.actor,
    action: row.action,
    resource: row.resource,
    resource_id: row.resourceId,
  };
  if (row.before) doc.before = row.before;
  if (row.after) doc.after = row.after;
  return doc;
}

/** Newest first; `startKey` is the `seq` to continue below. */
export async function listAudit(ctx: ServiceContext, actor: Actor, accountId: string, options: { resource?: string; pageSize: number; startKey?: number }) {
  const account = await ctx.store.read.getAccount(accountId);
  if (!account) throw notFound(accountId);
  authorize(actor, account, 'read');
  const rows = await ctx.store.read.listAudit(accountId, {
    ...(options.resource === undefined ? {} : { resource: options.resource }),
    ...(options.startKey === undefined ? {} : { beforeSeq: options.startKey }),
    limit: options.pageSize + 1,
  });
  const page = rows.slice(0, options.pageSize);
  const next = rows.length > options.pageSize ? page[page.length - 1]!.seq : undefined;
  return { entries: page.map(presentAudit), nextStartKey: next };
}
