// The meaning of one access list (api.md §4): order + cidrs + user_agent → allow | deny, and why.
// The user-agent pattern compiles into a linear-time RE2 matcher; the decision index
// (index.ts, list-arena.ts) holds the compiled lists and asks `explainList` for the verdict.

import { RE2JS } from 're2js';

export type Order = 'allow,deny' | 'deny,allow';
export type Verdict = 'allow' | 'deny';
export type ListReason = 'matched' | 'not_matched' | 'empty_list' | 'user_agent_mismatch' | 'no_list';

export interface AccessList {
  order: Order;
  cidrs: string[];
  user_agent?: string;
}

export interface ListDecision {
  decision: Verdict;
  reason: ListReason;
  order?: Order;
  cidr?: string;
}

export const USER_AGENT_MAX_LENGTH = 1024;

export type PatternCheck = { ok: true; matcher: RE2JS } | { ok: false; message: string };

/**
 * Compiles a tenant's user-agent pattern in RE2 syntax, which has no backtracking: matching is
 * linear in the input, so no pattern can stall the process. Constructs RE2 cannot run in linear
 * time (backreferences, lookaround) are refused here.
 */
export function compileUserAgent(pattern: string): PatternCheck {
  if (pattern.length > USER_AGENT_MAX_LENGTH) {
    return { ok: false, message: `user_agent is longer than ${USER_AGENT_MAX_LENGTH} characters` };
  }
  try {
    return { ok: true, matcher: RE2JS.compile(pattern) };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, message: `user_agent is not a linear-time (RE2) regular expression: ${detail}` };
  }
}

/**
 * The api.md §4 table for one list: `userAgentOk` says whether its user agent (if any) matches,
 * `found` is the index in `cidrs` of the entry holding the source, or -1. The decision index's
 * explanation and its fast path (list-arena.ts) both follow it.
 */
export function explainList(order: Order, userAgentOk: boolean, cidrs: readonly string[], found: number): ListDecision {
  if (!userAgentOk) return { decision: 'deny', reason: 'user_agent_mismatch', order };
  const allowIfIn = order === 'allow,deny';
  if (cidrs.length === 0) return { decision: allowIfIn ? 'deny' : 'allow', reason: 'empty_list', order };
  if (found < 0) return { decision: allowIfIn ? 'deny' : 'allow', reason: 'not_matched', order };
  return { decision: allowIfIn ? 'allow' : 'deny', reason: 'matched', order, cidr: cidrs[found]! };
}
