// The meaning of one access list (api.md §4): order + cidrs + user_agent → allow | deny, and why.
// The user-agent pattern compiles into a linear-time RE2 matcher; the decision index
// (index.ts, list-arena.ts) holds the compiled lists and asks `explainList` for the verdict.

import { RE2JS } from 're2js';

export type Order = 'allow,deny' | 'deny,allow';
export type Verdict = 'allow' | 'deny';
/** `user_agent_invalid`: the stored pattern no longer compiles, and the list denies (issue 20). */
export type ListReason = 'matched' | 'not_matched' | 'empty_list' | 'user_agent_mismatch' | 'user_agent_invalid' | 'no_list';
/** A list's user-agent test: no pattern or a match, no match, or a stored pattern that does not compile. */
export type UserAgentCheck = 'ok' | 'mismatch' | 'invalid';

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
/**
 * A User-Agent is cut to this many characters before it is matched: matching costs the input's
 * length times the pattern's program size, and no real User-Agent is longer.
 */
export const USER_AGENT_MATCHED_LENGTH = 1024;
/**
 * The largest compiled program (re2js `programSize()`, in instructions) a new pattern may have.
 * Repetition counts multiply it (`[a-z]{1000}` is 11 characters and 1002 instructions), and a
 * cold match's worst case grows with it (figures: docs/performance.md, "Figures behind the
 * code"); real patterns need well under 100.
 */
export const USER_AGENT_MAX_PROGRAM = 256;

export type PatternCheck = { ok: true; matcher: RE2JS } | { ok: false; message: string };

/**
 * Compiles a tenant's user-agent pattern in RE2 syntax, which has no backtracking: matching
 * costs at most the input's length times the program's size, both bounded (the two constants
 * above). Constructs RE2 cannot run in linear time (backreferences, lookaround) are refused.
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
 * A new pattern (written through the API or the CLI): it must compile, and into a program of at
 * most USER_AGENT_MAX_PROGRAM instructions. Stored patterns are compiled without the size bound
 * (compileUserAgent), so a list written before the bound keeps working.
 */
export function checkUserAgent(pattern: string): PatternCheck {
  const compiled = compileUserAgent(pattern);
  if (!compiled.ok) return compiled;
  const size = compiled.matcher.programSize();
  if (size > USER_AGENT_MAX_PROGRAM) {
    return { ok: false, message: `user_agent compiles to ${size} instructions, more than ${USER_AGENT_MAX_PROGRAM}: use smaller repetition counts` };
  }
  return compiled;
}

/**
 * The api.md §4 table for one list: `userAgent` says whether its user agent (if any) matches,
 * `found` is the index in `cidrs` of the entry holding the source, or -1. The decision index's
 * explanation and its fast path (list-arena.ts) both follow it.
 */
export function explainList(order: Order, userAgent: UserAgentCheck, cidrs: readonly string[], found: number): ListDecision {
  if (userAgent === 'mismatch') return { decision: 'deny', reason: 'user_agent_mismatch', order };
  // Fails closed: a pattern that cannot be evaluated matches nothing.
  if (userAgent === 'invalid') return { decision: 'deny', reason: 'user_agent_invalid', order };
  const allowIfIn = order === 'allow,deny';
  if (cidrs.length === 0) return { decision: allowIfIn ? 'deny' : 'allow', reason: 'empty_list', order };
  if (found < 0) return { decision: allowIfIn ? 'deny' : 'allow', reason: 'not_matched', order };
  return { decision: allowIfIn ? 'allow' : 'deny', reason: 'matched', order, cidr: cidrs[found]! };
}
