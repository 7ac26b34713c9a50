// What every write of trunk IP ACL entries checks inside its transaction (api.md §5), and the
// store work of a trunk's bulk create (issue 23). Kept apart from trunks.ts, with light imports,
// because a bulk create's transaction may run in a worker thread of the store's own
// (store.transactionAside: its statements, rows, audit entries and COMMIT then never hold the
// event loop), which loads this module alone.

import type { IpAclRow, Json, Repository, TrunkRow } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { auditEntry } from './audit.ts';
import { conflict, Failure, invalid, notFound } from './errors.ts';
import { pace } from '../store/turns.ts';
import { blockSubject, recordBlockChanges } from './trunk-blocks.ts';

export async function trunkOf(tx: Repository, accountId: string, trunkId: string): Promise<TrunkRow> {
  const trunk = await tx.getTrunk(trunkId);
  if (!trunk || trunk.accountId !== accountId) throw notFound(trunkId);
  return trunk;
}

/** api.md §5: a trunk holds at most the limit's entries. */
export async function assertRoom(tx: Repository, trunkId: string, adding: number, limit: number): Promise<void> {
  if ((await tx.countIpAcls(trunkId)) + adding > limit) {
    throw invalid({ ip_acls: { maxItems: { message: `a trunk holds at most ${limit} IP ACL entries`, value: limit } } });
  }
}

/**
 * The first of `rows` (active entries of one account, about to be written) that would capture
 * another account's traffic, or repeat this account's block of another trunk; null when none.
 * One query for the lot (a bulk load of a trunk costs a few queries, not one per entry).
 */
export async function findCapture(tx: Repository, rows: readonly IpAclRow[]): Promise<{ index: number; message: string } | null> {
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
export async function assertNoCapture(tx: Repository, entries: readonly IpAclRow[]): Promise<void> {
  const capture = await findCapture(tx, entries);
  if (capture) throw conflict('conflicting documents', capture.message);
}

/** Exactly the seed's object. */
export function presentIpAcl(r: IpAclRow): Json {
  return { id: r.id, trunk_id: r.trunkId, ip_address: r.ipAddress, description: r.description, enabled: r.enabled, created_at: r.createdAt, updated_at: r.updatedAt };
}

/** What varies between the entries of one batch. */
type BatchField = 'id' | 'ipAddress' | 'family' | 'rangeLo' | 'rangeHi' | 'prefix' | 'description' | 'enabled' | 'revision';
const BATCH_FIELDS: readonly BatchField[] = ['id', 'ipAddress', 'family', 'rangeLo', 'rangeHi', 'prefix', 'description', 'enabled', 'revision'];

/**
 * A trunk's new entries, ready to store, as plain data that may cross to a worker thread: an
 * array a field (a thousand objects took 1-4 ms to copy across, on the event loop; their columns
 * a few tenths), the audit entries made where they are stored.
 */
export interface IpAclBatch {
  accountId: string;
  trunkId: string;
  /** The per-trunk limit (api.md §5). */
  limit: number;
  /** Their created_at and updated_at. */
  at: string;
  actor: Actor;
  columns: { [F in BatchField]: IpAclRow[F][] };
}

export function ipAclBatch(rows: readonly IpAclRow[], fields: Omit<IpAclBatch, 'columns'>): IpAclBatch {
  const columns = Object.fromEntries(BATCH_FIELDS.map((field) => [field, rows.map((row) => row[field])])) as IpAclBatch['columns'];
  return { ...fields, columns };
}

function rowsOf({ accountId, trunkId, at, columns }: IpAclBatch): IpAclRow[] {
  return columns.id.map((id, i) => ({
    id,
    trunkId,
    accountId,
    ipAddress: columns.ipAddress[i]!,
    family: columns.family[i]!,
    rangeLo: columns.rangeLo[i]!,
    rangeHi: columns.rangeHi[i]!,
    prefix: columns.prefix[i]!,
    description: columns.description[i]!,
    enabled: columns.enabled[i]!,
    revision: columns.revision[i]!,
    createdAt: at,
    updatedAt: at,
  }));
}

/** Entries written between two chances for the event loop (SQLite writes block it). */
const WRITE_SLICE = 64;

/**
 * Checks and writes `batch` inside the caller's transaction: the trunk, its room, the capture
 * rule against what the transaction sees, then the entries, their changes and audit entries.
 */
export async function storeIpAclBatch(tx: Repository, batch: IpAclBatch): Promise<void> {
  const { accountId, trunkId, at, actor } = batch;
  const rows = rowsOf(batch);
  const trunk = await trunkOf(tx, accountId, trunkId);
  await assertRoom(tx, trunkId, rows.length, batch.limit);
  // The batch is one account's, on one trunk: its entries cannot capture one another.
  const active = trunk.enabled ? rows.filter((row) => row.enabled) : [];
  const capture = await findCapture(tx, active);
  if (capture) throw conflict('conflicting documents', `${rows.indexOf(active[capture.index]!)}.ip_address: ${capture.message}`);
  for (let i = 0; i < rows.length; i += WRITE_SLICE) {
    await pace();
    const slice = rows.slice(i, i + WRITE_SLICE);
    await tx.insertIpAcls(slice);
    await recordBlockChanges(tx, accountId, slice, at);
    await tx.insertAudits(slice.map((row) => auditEntry(actor, { accountId, action: 'create', resource: 'ip_acls', resourceId: row.id, after: presentIpAcl(row) })));
  }
}

/** The store's `transactionAside` as a module and export name (the worker imports it). */
export const STORE_IP_ACL_BATCH = { module: import.meta.url, name: 'storeIpAclBatch' } as const;

/** A Failure that came back from a worker thread as plain data, as a Failure again (other errors as they are). */
export function revivedFailure(error: unknown): unknown {
  const e = error as { name?: unknown; kind?: unknown; message?: unknown; details?: unknown } | null;
  if (e?.name !== 'Failure' || error instanceof Failure || typeof e.kind !== 'string') return error;
  return new Failure(e.kind as Failure['kind'], String(e.message), (e.details ?? {}) as Failure['details']);
}
