// How a trunk IP ACL change is named in the change feed (issue 23): by the block it touched, so
// the decision index re-reads that block alone. `4:cb007100/24` is 203.0.113.0/24: the family,
// the network address as the store's fixed-width hex, the prefix length.

import type { TrunkBlock } from '../core/trunk-table.ts';
import type { IpAclRow, Repository } from '../store/port.ts';

export function blockSubject(row: Pick<IpAclRow, 'family' | 'rangeLo' | 'prefix'>): string {
  return `${row.family}:${row.rangeLo}/${row.prefix}`;
}

export interface SubjectBlock extends TrunkBlock {
  /** The network address as the store's hex. */
  start: string;
}

/** The block a subject names, or null for text that is none. */
export function blockOfSubject(subject: string): SubjectBlock | null {
  const match = /^([46]):([0-9a-f]{8}|[0-9a-f]{32})\/(\d{1,3})$/.exec(subject);
  if (!match) return null;
  const family = match[1] === '4' ? 4 : 6;
  const start = match[2]!;
  if (start.length !== (family === 4 ? 8 : 32)) return null;
  const words = Array.from({ length: start.length / 8 }, (_, w) => Number.parseInt(start.slice(w * 8, w * 8 + 8), 16));
  return { family, words, prefix: Number(match[3]), start };
}

/** Records one `trunk_block` change per distinct block of `rows`. */
export async function recordBlockChanges(tx: Repository, accountId: string, rows: readonly IpAclRow[], at: string): Promise<void> {
  const subjects = [...new Set(rows.map(blockSubject))];
  if (subjects.length > 0) await tx.recordChanges('trunk_block', accountId, at, subjects);
}
