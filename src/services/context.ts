// What every service needs, and the one way a change is made: one transaction, then the decision
// index catches up before the caller is answered (api.md §4: the next decision sees the change).

import type { Repository, Store } from '../store/port.ts';
import type { Decisions } from './decisions.ts';
import type { Limits } from './schemas.ts';
import type { Secrets } from './secrets.ts';

/** The loop's one budget a turn (store/turns.ts), for the API's requests to draw on too. */
export { pace } from '../store/turns.ts';

export interface ServiceContext {
  store: Store;
  decisions: Decisions;
  limits: Limits;
  /** api.md §5: accept private ranges as trunk IPs. */
  allowPrivateTrunkIps: boolean;
  /** This node's zone: its proxies are listed first (issue 3). */
  localZone?: string;
  /** api.md §9: the Kamailio address group the trunk entries are exported in (default 1). */
  kamailioGroup?: number;
  /** The deployment's secret key at work: sealed API keys, login tags. */
  secrets: Secrets;
}

export async function commit<T>(ctx: ServiceContext, fn: (tx: Repository) => Promise<T>): Promise<T> {
  const result = await ctx.store.transaction(fn);
  await caughtUp(ctx);
  return result;
}

/** The decision index catches up with what was just committed (by `commit`, or a transaction aside). */
export async function caughtUp(ctx: ServiceContext): Promise<void> {
  // The change is committed whatever happens next; a failed catch-up only leaves the index
  // marked stale until the next poll or notification replays the feed.
  await ctx.decisions.catchUp().catch(() => ctx.decisions.markStale());
}
