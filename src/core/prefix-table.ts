// A compiled set of CIDRs answering "which most specific block holds this address?" in
// O(log n) with no allocation: the blocks are flattened into sorted, disjoint intervals over typed
// arrays (each interval carries the most specific block covering it), and a jump table on the
// leading bits of the address narrows the binary search to a few intervals.
// Blocks either nest or are disjoint, which is what makes a single sweep with a stack enough.
//
// The jump table is sized to the table (a slot per two to four intervals, at most 2^18 slots)
// and indexes the bits just after the leading bits every interval shares: a list of customer
// /48s inside 2001:db8::/32 still spreads over the whole table, and a 20-entry list costs a few
// words, not a fixed 256 KiB. Its slot is a lookup's first load, so the table is kept small
// enough to stay in cache beside the intervals (figures: docs/performance.md, "Figures behind
// the code").

import type { Cidr } from './ip.ts';

export interface PrefixEntry {
  readonly cidr: Cidr;
  /** The caller's handle for this block, returned by lookups (≥ 0). */
  readonly value: number;
}

const NONE = -1;
/** In a sweep's `parents`: the block repeats one added before it and is not in the table. */
export const DUPLICATE = -2;
/** Below this many intervals a plain binary search is as quick as the jump table. */
const JUMP_THRESHOLD = 16;
const MAX_JUMP_BITS = 18;
/** 2^this fewer slots than the next power of two above the interval count: 2–4 intervals a slot. */
const SPARSENESS_BITS = 2;

function maskOf(keep: number): number {
  if (keep >= 32) return 0xffffffff;
  if (keep <= 0) return 0;
  return (0xffffffff << (32 - keep)) >>> 0;
}

/**
 * Blocks of one family (stride 1 for IPv4, 4 words for IPv6) as they are added, in typed arrays
 * that grow: building a million-entry table allocates a handful of arrays, not a million objects.
 */
class Blocks {
  lo: Uint32Array;
  hi: Uint32Array;
  prefix = new Uint8Array(8);
  value = new Int32Array(8);
  count = 0;

  // Scratch reused by every sweep of these blocks (see `sweep`).
  readonly stack: Int32Array;
  readonly next: Uint32Array;
  private order = new Int32Array(8);
  private keys: BigUint64Array | null = null;
  private sortedValue = new Int32Array(0);
  private readonly flat: Out = { starts: new Uint32Array(0), values: new Int32Array(0), n: 0 };
  /** Start ascending, then wider first (it encloses the narrower), then the order they came in. */
  private readonly byStart = (a: number, b: number): number => compareAt(this.lo, a, this.lo, b, this.stride) || this.prefix[a]! - this.prefix[b]! || a - b;

  constructor(readonly stride: 1 | 4) {
    this.lo = new Uint32Array(8 * stride);
    this.hi = new Uint32Array(8 * stride);
    this.stack = new Int32Array(stride * 32 + 2);
    this.next = new Uint32Array(stride);
  }

  /** The output buffers of a sweep, with room for `intervals`. */
  out(intervals: number): Out {
    const flat = this.flat;
    if (flat.values.length < intervals) {
      flat.values = new Int32Array(intervals);
      flat.starts = new Uint32Array(intervals * this.stride);
    }
    return flat;
  }

  /** The block indices in sweep order (`byStart`), in a scratch array. */
  sortBlocks(): Int32Array {
    const count = this.count;
    if (this.order.length < count) this.order = new Int32Array(this.value.length);
    const order = this.order.subarray(0, count);
    if (count >= NUMERIC_SORT_MIN && count < 2 ** INDEX_BITS) return this.stride === 1 ? this.sortByKey(order) : this.sortByLeadingBits(order);
    for (let i = 0; i < count; i++) order[i] = i;
    return order.sort(this.byStart);
  }

  /** `count` 64-bit sort keys in scratch, and the same memory as 32-bit halves (no BigInt made). */
  private keyScratch(count: number): { keys: BigUint64Array; halves: Uint32Array } {
    if (this.keys === null || this.keys.length < count) this.keys = new BigUint64Array(this.value.length);
    const keys = this.keys.subarray(0, count);
    return { keys, halves: new Uint32Array(keys.buffer, keys.byteOffset, count * 2) };
  }

  /**
   * IPv6: each block as the 64-bit key (first word, as many leading bits of the second as the
   * index leaves room for, index) sorted natively; only blocks whose keys tie on those leading
   * bits then go through the comparator, a run at a time: a native sort does the bulk of the work.
   */
  private sortByLeadingBits(order: Int32Array): Int32Array {
    const count = order.length;
    const indexBits = 32 - Math.clz32(count - 1);
    const { keys, halves } = this.keyScratch(count);
    const high = LITTLE_ENDIAN ? 1 : 0;
    const lo = this.lo;
    for (let i = 0; i < count; i++) {
      halves[2 * i + high] = lo[4 * i]!;
      halves[2 * i + 1 - high] = (((lo[4 * i + 1]! >>> indexBits) << indexBits) | i) >>> 0;
    }
    keys.sort();
    const indexMask = 2 ** indexBits - 1;
    for (let k = 0; k < count; k++) order[k] = halves[2 * k + 1 - high]! & indexMask;
    let run = 0;
    for (let k = 1; k <= count; k++) {
      const tied = k < count && halves[2 * k + high] === halves[2 * run + high] && halves[2 * k + 1 - high]! >>> indexBits === halves[2 * run + 1 - high]! >>> indexBits;
      if (tied) continue;
      if (k - run > 1) order.subarray(run, k).sort(this.byStart);
      run = k;
    }
    return order;
  }

  /**
   * IPv4 only: each block as the 64-bit key (start, prefix, index) sorted natively, with no
   * comparator call per comparison. The keys are written and read as 32-bit halves, so no BigInt
   * is made.
   */
  private sortByKey(order: Int32Array): Int32Array {
    const count = order.length;
    const { keys, halves } = this.keyScratch(count);
    const high = LITTLE_ENDIAN ? 1 : 0;
    for (let i = 0; i < count; i++) {
      halves[2 * i + high] = this.lo[i]!;
      halves[2 * i + 1 - high] = ((this.prefix[i]! << INDEX_BITS) | i) >>> 0;
    }
    keys.sort();
    // The blocks are rewritten in that order, start and prefix from the keys and each value looked
    // up once: the sweep then walks its arrays in order instead of reading four scattered places
    // a block (at a million blocks, each a cache miss).
    if (this.sortedValue.length < count) this.sortedValue = new Int32Array(this.value.length);
    const { lo, hi, prefix, value, sortedValue } = this;
    for (let k = 0; k < count; k++) {
      const start = halves[2 * k + high]!;
      const rest = halves[2 * k + 1 - high]!;
      const bits = rest >>> INDEX_BITS;
      lo[k] = start;
      hi[k] = (start | ~maskOf(bits)) >>> 0;
      prefix[k] = bits;
      sortedValue[k] = value[rest & (2 ** INDEX_BITS - 1)]!;
      order[k] = k;
    }
    value.set(sortedValue.subarray(0, count));
    return order;
  }

  /** Forgets every block, keeping the capacity (a builder reused list after list). */
  reset(): void {
    this.count = 0;
  }

  add(words: ArrayLike<number>, prefix: number, value: number): void {
    if (this.count === this.value.length) this.grow();
    const n = this.count++;
    const s = this.stride;
    for (let w = 0; w < s; w++) {
      const mask = maskOf(prefix - 32 * w);
      this.lo[n * s + w] = (words[w]! & mask) >>> 0;
      this.hi[n * s + w] = (words[w]! | ~mask) >>> 0;
    }
    this.prefix[n] = prefix;
    this.value[n] = value;
  }

  private grow(): void {
    const size = this.value.length * 2;
    const lo = new Uint32Array(size * this.stride);
    const hi = new Uint32Array(size * this.stride);
    const prefix = new Uint8Array(size);
    const value = new Int32Array(size);
    lo.set(this.lo);
    hi.set(this.hi);
    prefix.set(this.prefix);
    value.set(this.value);
    Object.assign(this, { lo, hi, prefix, value });
  }
}

/** Compares `a[i*s..]` with `b[j*s..]` word by word (s = stride). */
function compareAt(a: Uint32Array, i: number, b: Uint32Array, j: number, s: number): number {
  for (let w = 0; w < s; w++) {
    const x = a[i * s + w]!;
    const y = b[j * s + w]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * Sorted, disjoint intervals: interval i starts at `starts[i*stride..]` and runs up to the next
 * start (the last one to the end of the address space); `values[i]` is the most specific block
 * holding it, or -1 in a gap.
 */
export interface Intervals {
  readonly starts: Uint32Array;
  readonly values: Int32Array;
  readonly count: number;
}

type Flat = Intervals;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** From this many IPv4 blocks on, `sortBlocks` uses a native numeric sort instead of a comparator. */
const NUMERIC_SORT_MIN = 256;
const INDEX_BITS = 26;

/**
 * Flattens nested-or-disjoint blocks into (start, value) boundaries: from each start up to the
 * next one, `value` is the most specific block (NONE in the gaps). Among identical blocks the
 * one added first wins. With `parents`, each block's value gets there the value of the block
 * that encloses it (NONE at the top, DUPLICATE for a block identical to one added before).
 *
 * The result lives in scratch buffers owned by `blocks` and reused by its next sweep: compiling
 * tens of thousands of small lists through one builder allocates nothing per list here (it used
 * to allocate five typed arrays and three closures per family per list).
 */
function sweep(blocks: Blocks, parents: Int32Array | null = null): Flat {
  const { lo, prefix, value, count, stride: s } = blocks;
  const order = blocks.sortBlocks();
  const out = blocks.out(2 * count + 1);
  out.n = 0;
  let depth = 0;
  const stack = blocks.stack; // nesting depth ≤ bits + 1: duplicates are skipped
  for (let k = 0; k < count; k++) {
    const b = order[k]!;
    const top = depth > 0 ? stack[depth - 1]! : -1;
    if (top >= 0 && prefix[top] === prefix[b] && compareAt(lo, top, lo, b, s) === 0) {
      if (parents !== null) parents[value[b]!] = DUPLICATE;
      continue;
    }
    depth = closeBlocks(blocks, out, depth, b);
    if (parents !== null) parents[value[b]!] = depth > 0 ? value[stack[depth - 1]!]! : NONE;
    emit(out, s, lo, b, value[b]!);
    stack[depth++] = b;
  }
  closeBlocks(blocks, out, depth, -1);
  return { starts: out.starts, values: out.values, count: out.n };
}

/** The intervals being written by a sweep. */
interface Out {
  starts: Uint32Array;
  values: Int32Array;
  n: number;
}

/** Appends a boundary at `from[at]`: replaces the previous one at the same start, skips a repeat of its value. */
function emit(out: Out, s: number, from: Uint32Array, at: number, v: number): void {
  const n = out.n;
  if (n > 0 && compareAt(out.starts, n - 1, from, at, s) === 0) out.values[n - 1] = v;
  else if (n > 0 && out.values[n - 1] === v) return;
  else {
    for (let w = 0; w < s; w++) out.starts[n * s + w] = from[at * s + w]!;
    out.values[n] = v;
    out.n = n + 1;
  }
}

/** Pops every open block ending before block `limit` starts (all of them when limit < 0); returns the new depth. */
function closeBlocks(blocks: Blocks, out: Out, depth: number, limit: number): number {
  const { lo, hi, value, stack, next, stride: s } = blocks;
  while (depth > 0) {
    const top = stack[depth - 1]!;
    if (limit >= 0 && compareAt(hi, top, lo, limit, s) >= 0) return depth;
    depth--;
    // next = hi + 1; a block ending at the last address has no successor.
    let carry = 1;
    for (let w = s - 1; w >= 0; w--) {
      const x = hi[top * s + w]! + carry;
      next[w] = x >>> 0;
      carry = x > 0xffffffff ? 1 : 0;
    }
    if (carry === 0) emit(out, s, next, 0, depth > 0 ? value[stack[depth - 1]!]! : NONE);
  }
  return depth;
}

/**
 * A jump table over `bits` bits of the address's first 64 bits (words 0 and 1), taken just after
 * the `shared` leading bits every interval start has in common.
 */
interface Jump {
  readonly slots: Uint32Array;
  readonly shared: number;
  readonly bits: number;
  /** The shared leading bits of words 0 and 1 (the rest zero). */
  readonly base0: number;
  readonly base1: number;
}

/** The 32 bits of (w0, w1) starting at bit `from` (0 = the most significant), from < 64. */
function bitsFrom(w0: number, w1: number, from: number): number {
  if (from === 0) return w0 >>> 0;
  if (from < 32) return ((w0 << from) | (w1 >>> (32 - from))) >>> 0;
  return (w1 << (from - 32)) >>> 0;
}

function slotOf(jump: Jump, w0: number, w1: number): number {
  return bitsFrom(w0, w1, jump.shared) >>> (32 - jump.bits);
}

/** -1 / 1 when (w0, w1) lies before / after the span the starts share, 0 inside it. */
function outsideSpan(jump: Jump, w0: number, w1: number): number {
  const { shared, base0, base1 } = jump;
  const m0 = maskOf(shared);
  const x0 = (w0 & m0) >>> 0;
  if (x0 !== base0) return x0 < base0 ? -1 : 1;
  if (shared <= 32) return 0;
  const x1 = (w1 & maskOf(shared - 32)) >>> 0;
  return x1 === base1 ? 0 : x1 < base1 ? -1 : 1;
}

function jumpTable(flat: Flat, stride: 1 | 4): Jump | null {
  const { starts, count } = flat;
  if (count < JUMP_THRESHOLD) return null;
  const word1 = (i: number) => (stride === 4 ? starts[i * 4 + 1]! : 0);
  const first0 = starts[0]!;
  const last0 = starts[(count - 1) * stride]!;
  let shared = Math.clz32(first0 ^ last0);
  if (shared === 32 && stride === 4) shared += Math.clz32(word1(0) ^ word1(count - 1));
  const width = stride === 4 ? 64 : 32;
  const bits = Math.min(MAX_JUMP_BITS, width - shared, Math.ceil(Math.log2(count)) - SPARSENESS_BITS);
  if (bits <= 0) return null;
  const jump = {
    slots: new Uint32Array((1 << bits) + 1),
    shared,
    bits,
    base0: (first0 & maskOf(shared)) >>> 0,
    base1: (word1(0) & maskOf(shared - 32)) >>> 0,
  };
  // slots[p] = index of the first interval whose start falls in slot p or later: one pass over
  // the intervals, each filling the slots up to its own.
  const { slots } = jump;
  let p = 0;
  for (let i = 0; i < count; i++) {
    const slot = slotOf(jump, starts[i * stride]!, word1(i));
    while (p <= slot) slots[p++] = i;
  }
  while (p < slots.length) slots[p++] = count;
  return jump;
}

/** A table's arrays, as structured clone carries them (a table built in a worker thread). */
export interface PrefixTableParts {
  readonly starts4: Uint32Array;
  readonly values4: Int32Array;
  readonly jump4: Jump | null;
  readonly starts6: Uint32Array;
  readonly values6: Int32Array;
  readonly jump6: Jump | null;
  readonly size: number;
}

export class PrefixTable {
  private constructor(
    private readonly starts4: Uint32Array,
    private readonly values4: Int32Array,
    private readonly jump4: Jump | null,
    private readonly starts6: Uint32Array,
    private readonly values6: Int32Array,
    private readonly jump6: Jump | null,
    /** Number of blocks it was built from. */
    readonly size: number,
  ) {}

  static build(entries: readonly PrefixEntry[]): PrefixTable {
    const builder = new PrefixTableBuilder();
    const words = new Uint32Array(4);
    for (const { cidr, value } of entries) {
      const network = cidr.network;
      if (network.family === 4) {
        words[0] = network.value;
        builder.add(4, words, cidr.prefix, value);
      } else {
        builder.add(6, network.words, cidr.prefix, value);
      }
    }
    return builder.build();
  }

  static fromParts(p: PrefixTableParts): PrefixTable {
    return new PrefixTable(p.starts4, p.values4, p.jump4, p.starts6, p.values6, p.jump6, p.size);
  }

  get parts(): PrefixTableParts {
    return { starts4: this.starts4, values4: this.values4, jump4: this.jump4, starts6: this.starts6, values6: this.values6, jump6: this.jump6, size: this.size };
  }

  /** @internal Used by PrefixTableBuilder. */
  static fromBlocks(v4: Blocks, v6: Blocks, parents: Int32Array | null = null): PrefixTable {
    const flat4 = sweep(v4, parents);
    const flat6 = sweep(v6, parents);
    return new PrefixTable(
      flat4.starts.slice(0, flat4.count),
      flat4.values.slice(0, flat4.count),
      jumpTable(flat4, 1),
      flat6.starts.slice(0, flat6.count * 4),
      flat6.values.slice(0, flat6.count),
      jumpTable(flat6, 4),
      v4.count + v6.count,
    );
  }

  /** The value of the most specific block holding IPv4 `address`, or -1. */
  lookup4(address: number): number {
    const starts = this.starts4;
    let lo = 0;
    let hi = starts.length;
    const jump = this.jump4;
    if (jump !== null) {
      const outside = outsideSpan(jump, address, 0);
      // Before every start, or after the last one.
      if (outside !== 0) return outside < 0 ? NONE : this.values4[hi - 1]!;
      const p = slotOf(jump, address, 0);
      lo = jump.slots[p]!;
      hi = jump.slots[p + 1]!;
      if (lo > 0) lo--;
    }
    // Last index in [lo, hi) whose start ≤ address.
    let found = -1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid;
    }
    return found < 0 ? NONE : this.values4[found]!;
  }

  /** The value of the most specific block holding IPv6 `words` (four big-endian words), or -1. */
  lookup6(words: ArrayLike<number>): number {
    const starts = this.starts6;
    const w0 = words[0]!;
    let lo = 0;
    let hi = this.values6.length;
    const w1 = words[1]!;
    const jump = this.jump6;
    if (jump !== null) {
      const outside = outsideSpan(jump, w0, w1);
      if (outside !== 0) return outside < 0 ? NONE : this.values6[hi - 1]!;
      const p = slotOf(jump, w0, w1);
      lo = jump.slots[p]!;
      hi = jump.slots[p + 1]!;
      if (lo > 0) lo--;
    }
    const w2 = words[2]!;
    const w3 = words[3]!;
    let found = -1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const base = mid * 4;
      const s0 = starts[base]!;
      let lessOrEqual: boolean;
      if (s0 !== w0) lessOrEqual = s0 < w0;
      else if (starts[base + 1] !== w1) lessOrEqual = starts[base + 1]! < w1;
      else if (starts[base + 2] !== w2) lessOrEqual = starts[base + 2]! < w2;
      else lessOrEqual = starts[base + 3]! <= w3;
      if (lessOrEqual) {
        found = mid;
        lo = mid + 1;
      } else hi = mid;
    }
    return found < 0 ? NONE : this.values6[found]!;
  }
}

/**
 * Builds a PrefixTable from blocks added one by one, with no object per block: what compiles
 * access lists and trunk entries straight from their text (see `parseCidrInto`).
 */
export class PrefixTableBuilder {
  private readonly v4 = new Blocks(1);
  private readonly v6 = new Blocks(4);

  /** Adds the block `words`/`prefix` (host bits are cleared) of `family`; `value` ≥ 0. */
  add(family: 4 | 6, words: ArrayLike<number>, prefix: number, value: number): void {
    (family === 4 ? this.v4 : this.v6).add(words, prefix, value);
  }

  /**
   * The table of the blocks added. With `parents` (indexed by value), each block's enclosing
   * block is written there too (see `sweep`): what an incremental owner walks when a block has
   * gone since the table was built.
   */
  build(parents: Int32Array | null = null): PrefixTable {
    return PrefixTable.fromBlocks(this.v4, this.v6, parents);
  }

  /** The blocks of `family` added so far, flattened: what `build` makes a table from. */
  intervals(family: 4 | 6): Intervals {
    return sweep(family === 4 ? this.v4 : this.v6);
  }

  /** Empties the builder for the next set of blocks, keeping its buffers. */
  reset(): void {
    this.v4.reset();
    this.v6.reset();
  }
}
