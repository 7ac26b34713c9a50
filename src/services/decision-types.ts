// The read side of the decision index, as the API's decision endpoints and the SIP edge see it
// (api.md §4 decision API, §5 lookup, §7 edge). Answers come from memory, never the database.

import type { IndexTrunkEntry, RealmDecision } from '../core/index.ts';

export type { ListDecision, ListReason, Order, Verdict } from '../core/acl.ts';
export type { AccountDecision, IndexTrunkEntry, RealmDecision, TrunkMatch } from '../core/index.ts';

export interface DecisionReader {
  /**
   * Which enabled trunk IP ACL entry the source authenticates (the most specific), or null: the
   * entry itself, with no answer built around it (the edge needs its account and trunk only).
   */
  trunkEntryFor(ip: string): IndexTrunkEntry | null;
  /**
   * The account's and device's access lists for a request from `ip` (userAgent '' when absent).
   * An unknown realm answers `reason: 'unknown_realm'` with the configured policy's decision.
   */
  decideByRealm(ip: string, realm: string, username: string, userAgent: string): RealmDecision;
}
