// Every access list of the decision index packed into one shared Uint32Array (the arena), each
// list a contiguous record named by an integer handle (its offset).
//
// Why: over tens of thousands of lists each dependent load of a decision is mostly a cache miss,
// so a list is no chain of objects (compiled list → PrefixTable → typed array → backing store)
// but a record: the account object holds the handle, the arena is one array whose backing store
// stays hot, and a list's header and intervals sit side by side.
//
// Within a record each family's intervals form a static search tree laid out breadth first, so
// that the first levels of every search share the header's cache line or the next; a binary
// search over sorted intervals waited on about one line per step.
// - IPv4: a 5-way tree (node i's children are 5i + 1 … 5i + 5). A node holds four starts, each
//   with its interval's value, after the value in effect before its first start. A search
//   counts the starts ≤ the address in a node, without branches, and steps to that child; in
//   the last node it visits the count picks the answer. Two levels hold 24 intervals, three
//   124: a typical list is searched in two or three nodes. (Four starts a node measured fastest
//   of the 2- to 8-way trees: docs/performance.md, "Figures behind the code".) The last node's
//   unused starts are 0xffffffff carrying the last value: an interval that changes nothing.
// - IPv6: the binary tree in Eytzinger order (node k's children are 2k and 2k + 1), where a
//   comparison is four words. The descent ends at the first interval that starts after the
//   address; each node carries the value of the interval before it, which is the answer.
//
// A record (word offsets from the handle):
//   0 flags (ALLOW_IF_IN, HAS_USER_AGENT, USER_AGENT_INVALID)   1 IPv4 node count   2 IPv6 interval count
//   3 index + 1 of the list's 0.0.0.0/0 entry (0: none)   4 user-agent slot
//   then the IPv4 nodes (value + 1 before the first start, then four (start, value + 1) pairs),
//   then the value + 1 of the last IPv6 interval and the IPv6 nodes as
//   (w0, w1, w2, w3, previous value + 1). Value is the entry's index in the list's cidrs; value
//   + 1 = 0 marks a gap (or nothing before). The intervals are PrefixTableBuilder's (sorted,
//   disjoint, most specific wins). IPv6's last value sits where its tree's node 0 keeps its
//   value (node 0 is never visited; its start words overlap the words before it), so the answer
//   is read from node k whatever k the descent ends at.
//
// Replacing a list leaves its old record behind as garbage; the owner copies the live records
// into a fresh arena (`moveTo`) when `wantsCompaction` says half of it is garbage.

import type { AccessList, Order, UserAgentCheck } from './acl.ts';
import { compileUserAgent, USER_AGENT_MATCHED_LENGTH } from './acl.ts';
import { parseCidrInto } from './ip.ts';
import type { Intervals } from './prefix-table.ts';
import { PrefixTableBuilder } from './prefix-table.ts';

/** The handle of a missing list (which allows everything). */
export const NO_LIST = -1;

const FLAGS = 0;
const NODES4 = 1;
const COUNT6 = 2;
const ALL_IPV6 = 3;
const USER_AGENT = 4;
const HEADER = 5;
/** The words of a record besides its nodes: the header and IPv6's last value. */
const FIXED = HEADER + 1;
/** Starts in an IPv4 node (the count in `find4` is written out for four). */
const KEYS4 = 4;
const NODE4 = 1 + 2 * KEYS4;

const ALLOW_IF_IN = 1;
const HAS_USER_AGENT = 2;
/** The stored pattern does not compile: it matches nothing, so the list denies (fails closed). */
const USER_AGENT_INVALID = 4;

interface UserAgentMatcher {
  test(userAgent: string): boolean;
}
const MATCHES_NOTHING: UserAgentMatcher = { test: () => false };

/** Compaction is not worth it below this many words of garbage. */
const MIN_GARBAGE = 1 << 16;

// Compiling runs one list at a time: one builder and one parse scratch serve them all, so a
// list costs no allocation beyond its own record.
const builder = new PrefixTableBuilder();
const parsed = new Uint32Array(5);

export class ListArena {
  private words: Uint32Array;
  private used = 0;
  private garbage = 0;
  /** User-agent matchers by slot (records hold the slot); freed slots are null. */
  private userAgents: (UserAgentMatcher | null)[] = [];

  constructor(capacity = 1024) {
    this.words = new Uint32Array(Math.max(capacity, FIXED));
  }

  /** Compiles a stored (already validated) list; entries that do not parse are skipped. */
  add(list: AccessList): number {
    builder.reset();
    let allIPv6Entry = -1;
    for (let value = 0; value < list.cidrs.length; value++) {
      const family = parseCidrInto(list.cidrs[value]!, parsed);
      if (family === 0) continue;
      const prefix = parsed[4]!;
      builder.add(family, parsed, prefix, value);
      // api.md §4: 0.0.0.0/0 holds IPv6 sources too.
      if (family === 4 && prefix === 0 && allIPv6Entry < 0) allIPv6Entry = value;
    }
    const v4 = builder.intervals(4);
    const v6 = builder.intervals(6);
    const nodes4 = Math.ceil(v4.count / KEYS4);
    const handle = this.allocate(FIXED + NODE4 * nodes4 + 5 * v6.count);
    const pattern = list.user_agent === undefined ? null : compileUserAgent(list.user_agent);
    const matcher = pattern === null ? null : pattern.ok ? pattern.matcher : MATCHES_NOTHING;
    const w = this.words;
    w[handle + FLAGS] = (list.order === 'allow,deny' ? ALLOW_IF_IN : 0) | (matcher ? HAS_USER_AGENT : 0) | (pattern?.ok === false ? USER_AGENT_INVALID : 0);
    w[handle + NODES4] = nodes4;
    w[handle + COUNT6] = v6.count;
    w[handle + ALL_IPV6] = allIPv6Entry + 1;
    w[handle + USER_AGENT] = matcher ? this.userAgents.push(matcher) - 1 : 0;
    layOut4(v4, nodes4, w, handle + HEADER, 0, 0);
    layOut6(v6, w, nodeBase6(handle, nodes4));
    return handle;
  }

  /** Marks a list's record as garbage (its handle must not be used again). */
  remove(handle: number): void {
    if (handle === NO_LIST) return;
    this.garbage += this.sizeOf(handle);
    if (this.words[handle + FLAGS]! & HAS_USER_AGENT) this.userAgents[this.words[handle + USER_AGENT]!] = null;
  }

  /** True when at least half of the arena is garbage (and enough of it to bother). */
  get wantsCompaction(): boolean {
    return this.garbage >= MIN_GARBAGE && this.garbage * 2 >= this.used;
  }

  /** Words held by live records: the capacity a compacted arena needs. */
  get liveWords(): number {
    return this.used - this.garbage;
  }

  /** Copies a live record into `target`; returns its handle there. */
  moveTo(target: ListArena, handle: number): number {
    if (handle === NO_LIST) return NO_LIST;
    const size = this.sizeOf(handle);
    const moved = target.allocate(size);
    target.words.set(this.words.subarray(handle, handle + size), moved);
    if (this.words[handle + FLAGS]! & HAS_USER_AGENT) {
      target.words[moved + USER_AGENT] = target.userAgents.push(this.userAgents[this.words[handle + USER_AGENT]!]!) - 1;
    }
    return moved;
  }

  /** Index in the list's cidrs of the most specific entry holding the source, or -1. */
  find(handle: number, family: 4 | 6, source: Uint32Array): number {
    return family === 4 ? this.find4(handle, source[0]!) : this.find6(handle, source);
  }

  order(handle: number): Order {
    return this.words[handle + FLAGS]! & ALLOW_IF_IN ? 'allow,deny' : 'deny,allow';
  }

  userAgentCheck(handle: number, userAgent: string): UserAgentCheck {
    const flags = this.words[handle + FLAGS]!;
    if (flags & USER_AGENT_INVALID) return 'invalid';
    return (flags & HAS_USER_AGENT) === 0 || this.userAgentMatches(handle, userAgent) ? 'ok' : 'mismatch';
  }

  /** Does the list hold a stored pattern that does not compile? */
  userAgentInvalid(handle: number): boolean {
    return (this.words[handle + FLAGS]! & USER_AGENT_INVALID) !== 0;
  }

  private userAgentMatches(handle: number, userAgent: string): boolean {
    const input = userAgent.length > USER_AGENT_MATCHED_LENGTH ? userAgent.slice(0, USER_AGENT_MATCHED_LENGTH) : userAgent;
    return this.userAgents[this.words[handle + USER_AGENT]!]!.test(input);
  }

  private find4(handle: number, address: number): number {
    const w = this.words;
    const nodes = w[handle + NODES4]!;
    if (nodes === 0) return -1;
    let node = 0;
    let at = 0;
    let below = 0;
    do {
      at = handle + HEADER + NODE4 * node;
      below = (w[at + 1]! <= address ? 1 : 0) + (w[at + 3]! <= address ? 1 : 0) + (w[at + 5]! <= address ? 1 : 0) + (w[at + 7]! <= address ? 1 : 0);
      node = (KEYS4 + 1) * node + 1 + below;
    } while (node < nodes);
    // The value before the node's first start, or that of its last start ≤ the address.
    return w[at + 2 * below]! - 1;
  }

  private find6(handle: number, source: Uint32Array): number {
    const w = this.words;
    const n = w[handle + COUNT6]!;
    const base = nodeBase6(handle, w[handle + NODES4]!);
    let k = 1;
    while (k <= n) k = 2 * k + (startAtOrBefore(w, base + 5 * k, source) ? 1 : 0);
    const found = w[base + 5 * firstAfter(k) + 4]! - 1;
    // api.md §4: an IPv6 source outside every IPv6 block is still held by 0.0.0.0/0.
    return found >= 0 ? found : w[handle + ALL_IPV6]! - 1;
  }

  private sizeOf(handle: number): number {
    return FIXED + NODE4 * this.words[handle + NODES4]! + 5 * this.words[handle + COUNT6]!;
  }

  private allocate(size: number): number {
    if (this.used + size > this.words.length) {
      const grown = new Uint32Array(Math.max(this.words.length * 2, this.used + size));
      grown.set(this.words.subarray(0, this.used));
      this.words = grown;
    }
    const handle = this.used;
    this.used += size;
    return handle;
  }
}

/** Is the IPv6 interval start at `w[at..at+3]` ≤ the source (four big-endian words)? */
function startAtOrBefore(w: Uint32Array, at: number, s: Uint32Array): boolean {
  if (w[at] !== s[0]) return w[at]! < s[0]!;
  if (w[at + 1] !== s[1]) return w[at + 1]! < s[1]!;
  if (w[at + 2] !== s[2]) return w[at + 2]! < s[2]!;
  return w[at + 3]! <= s[3]!;
}

/**
 * Writes IPv4 node `node` of `nodes` and its subtree in order (children before, between and
 * after its starts), from the sorted interval `i` on; returns the next one. Recursion depth:
 * log5 of the count.
 */
function layOut4(from: Intervals, nodes: number, w: Uint32Array, base: number, node: number, i: number): number {
  if (node >= nodes) return i;
  const at = base + NODE4 * node;
  const child = (KEYS4 + 1) * node + 1;
  for (let j = 0; j < KEYS4; j++) {
    i = layOut4(from, nodes, w, base, child + j, i);
    if (j === 0) w[at] = i === 0 ? 0 : valueAt(from, i - 1);
    w[at + 1 + 2 * j] = i < from.count ? from.starts[i]! : 0xffffffff;
    w[at + 2 + 2 * j] = valueAt(from, i);
    i++;
  }
  return layOut4(from, nodes, w, base, child + KEYS4, i);
}

/** Value + 1 of sorted IPv4 interval `i`; past the last, the last's. */
function valueAt(from: Intervals, i: number): number {
  return from.values[Math.min(i, from.count - 1)]! + 1;
}

// IPv6 node k (from 1) sits at `base + 5k`: the base is one node before the first, placed so
// that node 0's value word is the one after the IPv4 nodes.
function nodeBase6(handle: number, nodes4: number): number {
  return handle + HEADER + NODE4 * nodes4 - 4;
}

/**
 * Where a descent that ran past the leaves at `k` found its answer: the last left turn was onto
 * the first node whose start is after the address, so dropping the trailing right turns and that
 * left turn gives it; 0 when the descent never turned left.
 */
function firstAfter(k: number): number {
  return k >>> (32 - Math.clz32(~k & (k + 1)));
}

/** Writes `from`'s IPv6 intervals as the tree at `base` (see the record's layout), node 0 included. */
function layOut6(from: Intervals, w: Uint32Array, base: number): void {
  w[base + 4] = from.count > 0 ? from.values[from.count - 1]! + 1 : 0;
  layOutSubtree6(from, w, base, 1, 0);
}

/**
 * Writes the subtree of node `k` as (w0, w1, w2, w3, previous value + 1) nodes, from the sorted
 * interval `i` on; returns the next one. Recursion depth: log2 of the count.
 */
function layOutSubtree6(from: Intervals, w: Uint32Array, base: number, k: number, i: number): number {
  if (k > from.count) return i;
  i = layOutSubtree6(from, w, base, 2 * k, i);
  const at = base + 5 * k;
  for (let s = 0; s < 4; s++) w[at + s] = from.starts[i * 4 + s]!;
  w[at + 4] = i > 0 ? from.values[i - 1]! + 1 : 0;
  return layOutSubtree6(from, w, base, 2 * k + 1, i + 1);
}
