// Every access list of the decision index packed into one shared Uint32Array (the arena), each
// list a contiguous record named by an integer handle (its offset).
//
// Why: a per-account decision used to walk account → compiled list → PrefixTable → typed array
// → backing store (and again for the device), each a dependent load and, over tens of thousands
// of lists, mostly a cache miss. Here the account object holds the handle, the arena is one
// array whose backing store stays hot, and a list's header and intervals sit side by side: one
// miss for a typical list. Short lists (most hold ≤ 40 entries) are scanned linearly, which is
// branch-predictable and reads one or two cache lines; long ones are binary searched.
//
// A record (word offsets from the handle):
//   0 flags (ALLOW_IF_IN, HAS_USER_AGENT)   1 IPv4 interval count   2 IPv6 interval count
//   3 index + 1 of the list's 0.0.0.0/0 entry (0: none)   4 user-agent slot
//   then the IPv4 intervals as (start, value + 1) pairs, then the IPv6 ones as
//   (w0, w1, w2, w3, value + 1); value is the entry's index in the list's cidrs, value + 1 = 0
//   marks a gap. The intervals are PrefixTableBuilder's (sorted, disjoint, most specific wins).
//
// Replacing a list leaves its old record behind as garbage; the owner copies the live records
// into a fresh arena (`moveTo`) when `wantsCompaction` says half of it is garbage.

import type { RE2JS } from 're2js';
import type { AccessList, Order } from './acl.ts';
import { compileUserAgent } from './acl.ts';
import { parseCidrInto } from './ip.ts';
import type { Intervals } from './prefix-table.ts';
import { PrefixTableBuilder } from './prefix-table.ts';

/** The handle of a missing list (which allows everything). */
export const NO_LIST = -1;

const FLAGS = 0;
const COUNT4 = 1;
const COUNT6 = 2;
const ALL_IPV6 = 3;
const USER_AGENT = 4;
const HEADER = 5;

const ALLOW_IF_IN = 1;
const HAS_USER_AGENT = 2;

/** Up to this many intervals a linear scan beats a binary search (measured). */
const LINEAR_MAX = 16;
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
  private userAgents: (RE2JS | null)[] = [];

  constructor(capacity = 1024) {
    this.words = new Uint32Array(Math.max(capacity, HEADER));
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
    const handle = this.allocate(HEADER + 2 * v4.count + 5 * v6.count);
    const pattern = list.user_agent === undefined ? null : compileUserAgent(list.user_agent);
    const matcher = pattern?.ok ? pattern.matcher : null;
    const w = this.words;
    w[handle + FLAGS] = (list.order === 'allow,deny' ? ALLOW_IF_IN : 0) | (matcher ? HAS_USER_AGENT : 0);
    w[handle + COUNT4] = v4.count;
    w[handle + COUNT6] = v6.count;
    w[handle + ALL_IPV6] = allIPv6Entry + 1;
    w[handle + USER_AGENT] = matcher ? this.userAgents.push(matcher) - 1 : 0;
    copyIntervals(v4, 1, w, handle + HEADER);
    copyIntervals(v6, 4, w, handle + HEADER + 2 * v4.count);
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

  /** The fast path: does the list let the source through? (api.md §4; NO_LIST allows.) */
  allows(handle: number, family: 4 | 6, source: Uint32Array, userAgent: string): boolean {
    if (handle === NO_LIST) return true;
    const flags = this.words[handle + FLAGS]!;
    if (flags & HAS_USER_AGENT && !this.userAgentMatches(handle, userAgent)) return false;
    const inList = (family === 4 ? this.find4(handle, source[0]!) : this.find6(handle, source)) >= 0;
    return inList === ((flags & ALLOW_IF_IN) !== 0);
  }

  /** Index in the list's cidrs of the most specific entry holding the source, or -1. */
  find(handle: number, family: 4 | 6, source: Uint32Array): number {
    return family === 4 ? this.find4(handle, source[0]!) : this.find6(handle, source);
  }

  order(handle: number): Order {
    return this.words[handle + FLAGS]! & ALLOW_IF_IN ? 'allow,deny' : 'deny,allow';
  }

  userAgentAllowed(handle: number, userAgent: string): boolean {
    return (this.words[handle + FLAGS]! & HAS_USER_AGENT) === 0 || this.userAgentMatches(handle, userAgent);
  }

  /** Bytes of the arena (for the index-size metric). */
  get bytes(): number {
    return this.words.byteLength;
  }

  private userAgentMatches(handle: number, userAgent: string): boolean {
    return this.userAgents[this.words[handle + USER_AGENT]!]!.test(userAgent);
  }

  private find4(handle: number, address: number): number {
    const w = this.words;
    const n = w[handle + COUNT4]!;
    const base = handle + HEADER;
    // The last interval whose start ≤ address (intervals are sorted by start).
    let k = -1;
    if (n <= LINEAR_MAX) {
      for (let j = 0; j < n && w[base + 2 * j]! <= address; j++) k = j;
    } else {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (w[base + 2 * mid]! <= address) {
          k = mid;
          lo = mid + 1;
        } else hi = mid;
      }
    }
    return k < 0 ? -1 : w[base + 2 * k + 1]! - 1;
  }

  private find6(handle: number, source: Uint32Array): number {
    const w = this.words;
    const n = w[handle + COUNT6]!;
    const base = handle + HEADER + 2 * w[handle + COUNT4]!;
    let k = -1;
    if (n <= LINEAR_MAX) {
      for (let j = 0; j < n && startAtOrBefore(w, base + 5 * j, source); j++) k = j;
    } else {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (startAtOrBefore(w, base + 5 * mid, source)) {
          k = mid;
          lo = mid + 1;
        } else hi = mid;
      }
    }
    const found = k < 0 ? -1 : w[base + 5 * k + 4]! - 1;
    // api.md §4: an IPv6 source outside every IPv6 block is still held by 0.0.0.0/0.
    return found >= 0 ? found : w[handle + ALL_IPV6]! - 1;
  }

  private sizeOf(handle: number): number {
    return HEADER + 2 * this.words[handle + COUNT4]! + 5 * this.words[handle + COUNT6]!;
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

/** Writes intervals as (start words…, value + 1) records of `stride + 1` words from `at`. */
function copyIntervals(from: Intervals, stride: 1 | 4, w: Uint32Array, at: number): void {
  const { starts, values, count } = from;
  for (let i = 0; i < count; i++, at += stride + 1) {
    for (let s = 0; s < stride; s++) w[at + s] = starts[i * stride + s]!;
    w[at + stride] = values[i]! + 1;
  }
}
