// Who is asking, and what the account hierarchy lets them touch (api.md §2): a caller acts on its
// own account and every descendant; a superduper admin on everything; a `user` only reads.

import type { AccountRow } from '../store/port.ts';
import { forbidden } from './errors.ts';

export interface Actor {
  accountId: string;
  /** The account's path in the hierarchy ('/root/.../id/'). */
  path: string;
  superduper: boolean;
  /** Admin of its account (API keys act as admins). */
  admin: boolean;
  userId?: string;
  /** Authenticated by the account's API key rather than a user. */
  apiKey?: true;
}

export type Access = 'read' | 'write';

export function mayAccess(actor: Actor, account: Pick<AccountRow, 'path'>, access: Access): boolean {
  if (access === 'write' && !actor.admin) return false;
  return actor.superduper || account.path.startsWith(actor.path);
}

export function authorize(actor: Actor, account: Pick<AccountRow, 'path'>, access: Access): void {
  if (!mayAccess(actor, account, access)) throw forbidden();
}

export function requireSuperduper(actor: Actor): void {
  if (!actor.superduper || !actor.admin) throw forbidden();
}

/** How the audit trail names the actor: never a secret. */
export function auditActor(actor: Actor): Record<string, unknown> {
  const who: Record<string, unknown> = { account_id: actor.accountId };
  if (actor.userId !== undefined) who.user_id = actor.userId;
  if (actor.apiKey) who.api_key = true;
  return who;
}

/** The actor the CLI acts as: the system itself, with every right. */
export const SYSTEM_ACTOR: Actor = { accountId: 'system', path: '/', superduper: true, admin: true };
