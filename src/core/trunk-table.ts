// The active trunk IP ACL entries, kept current one block at a time (api.md §5, issue 23).
//
// Lookups read a compiled PrefixTable (the base) as fast as ever; a change touches one block and
// goes into a small overlay beside it, so its cost does not grow with the table. While the overlay
// is empty a lookup is the base's alone. Otherwise the base's answer still stands unless the
// block it names has changed (then its enclosing blocks are walked, as the base recorded them)
// or a changed block more specific than it holds the address (found by one Map probe per prefix
// length the overlay holds, usually one or two).
//
// Active blocks of different accounts never overlap, and one account's same block on two trunks
// is refused (api.md §5): every active entry of one block belongs to one trunk, and among them
// the first (the caller passes the smallest id, as a full build from the store's id order does)
// authenticates. A block is therefore set as a whole: its winning entry, or none.
//
// When the overlay has grown, the owner folds it into a new base: `startRebuild` collects the
// blocks in slices (`fill`), `buildTrunkBase` compiles them (in a worker thread for a large
// table), and `finishRebuild` swaps the result in, keeping in the overlay whatever changed since
// the rebuild started. Lookups never wait for any of it.

import { parseCidrInto } from './ip.ts';
import type { PrefixTableParts } from './prefix-table.ts';
import { DUPLICATE, PrefixTable, PrefixTableBuilder } from './prefix-table.ts';

/** An active entry: it and its trunk are enabled. */
export interface IndexTrunkEntry {
  id: string;
  accountId: string;
  trunkId: string;
  ipAddress: string;
}

/** One block: its family, network address (one word for IPv4, four for IPv6) and prefix length. */
export interface TrunkBlock {
  family: 4 | 6;
  words: ArrayLike<number>;
  prefix: number;
}

const NONE = -1;

function maskWord(word: number, index: number, prefix: number): number {
  const keep = prefix - 32 * index;
  if (keep >= 32) return word >>> 0;
  if (keep <= 0) return 0;
  return (word & (0xffffffff << (32 - keep))) >>> 0;
}

/** A block's key in the overlay: a number for IPv4 (no string made), text for IPv6. */
function keyOf(family: 4 | 6, words: ArrayLike<number>, prefix: number): number | string {
  if (family === 4) return maskWord(words[0]!, 0, prefix) * 64 + prefix;
  return `${maskWord(words[0]!, 0, prefix)}:${maskWord(words[1]!, 1, prefix)}:${maskWord(words[2]!, 2, prefix)}:${maskWord(words[3]!, 3, prefix)}/${prefix}`;
}

/** The blocks of a build, in growable typed arrays: value i is the i-th block added. */
export interface TrunkBuildInput {
  count: number;
  families: Uint8Array;
  /** Four words a block (IPv4 uses the first). */
  words: Uint32Array;
  prefixes: Uint8Array;
}

/** What a build gives back (structured-clone safe): the table, each value's enclosing block and its prefix length. */
export interface TrunkBuildOutput {
  table: PrefixTableParts;
  parents: Int32Array;
  prefixes: Uint8Array;
}

/**
 * The distinct buffers under `value`'s typed arrays: a build's input and output move between
 * threads rather than being copied (a million blocks' arrays take tens of milliseconds to copy,
 * on the event loop's side too).
 */
export function buffersOf(value: unknown, found = new Set<ArrayBuffer>()): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) found.add(value.buffer as ArrayBuffer);
  else if (value !== null && typeof value === 'object') for (const part of Object.values(value)) buffersOf(part, found);
  return [...found];
}

/** Compiles the blocks of `input` (pure; what the worker thread runs for a large table). */
export function buildTrunkBase(input: TrunkBuildInput): TrunkBuildOutput {
  const builder = new PrefixTableBuilder();
  const words = new Uint32Array(4);
  for (let v = 0; v < input.count; v++) {
    for (let w = 0; w < 4; w++) words[w] = input.words[v * 4 + w]!;
    builder.add(input.families[v] === 6 ? 6 : 4, words, input.prefixes[v]!, v);
  }
  const parents = new Int32Array(input.count).fill(NONE);
  return { table: builder.build(parents).parts, parents, prefixes: input.prefixes.slice(0, input.count) };
}

class InputCollector {
  readonly entries: IndexTrunkEntry[] = [];
  private input: TrunkBuildInput;

  constructor(capacity: number) {
    const size = Math.max(16, capacity);
    this.input = { count: 0, families: new Uint8Array(size), words: new Uint32Array(size * 4), prefixes: new Uint8Array(size) };
  }

  add(family: 4 | 6, words: ArrayLike<number>, prefix: number, entry: IndexTrunkEntry): void {
    let input = this.input;
    if (input.count === input.prefixes.length) {
      const size = input.count * 2;
      const grown = { count: input.count, families: new Uint8Array(size), words: new Uint32Array(size * 4), prefixes: new Uint8Array(size) };
      grown.families.set(input.families);
      grown.words.set(input.words);
      grown.prefixes.set(input.prefixes);
      this.input = input = grown;
    }
    const v = input.count++;
    input.families[v] = family;
    for (let w = 0; w < (family === 4 ? 1 : 4); w++) input.words[v * 4 + w] = words[w]!;
    input.prefixes[v] = prefix;
    this.entries.push(entry);
  }

  get result(): TrunkBuildInput {
    return this.input;
  }
}

/** A compiled base: the table, each value's entry, enclosing block and prefix, and whether its block has changed since. */
interface Base {
  readonly table: PrefixTable;
  readonly entries: readonly IndexTrunkEntry[];
  readonly parents: Int32Array;
  readonly prefixes: Uint8Array;
  readonly changed: Uint8Array;
}

interface OverlayBlock {
  readonly family: 4 | 6;
  readonly words: readonly number[];
  readonly prefix: number;
  entry: IndexTrunkEntry | null;
  /** The table's change counter when the block last changed. */
  seq: number;
}

function baseOf(entries: readonly IndexTrunkEntry[], output: TrunkBuildOutput): Base {
  return { table: PrefixTable.fromParts(output.table), entries, parents: output.parents, prefixes: output.prefixes, changed: new Uint8Array(output.prefixes.length) };
}

/** A rebuild under way: the blocks as of `seq`, collected a slice at a time. */
export class TrunkRebuild {
  private readonly collector: InputCollector;
  private next = 0;
  private overlay: Iterator<OverlayBlock> | null = null;
  private readonly scratch = new Uint32Array(5);

  /** @internal Made by TrunkTable.startRebuild. */
  constructor(
    readonly seq: number,
    private readonly base: Pick<Base, 'entries' | 'parents' | 'changed'>,
    overlay: Map<number | string, OverlayBlock>,
  ) {
    this.collector = new InputCollector(base.entries.length + overlay.size);
    this.overlay = overlay.values();
  }

  /** A build of `entries` alone, collected in slices like any rebuild (identical blocks: the first wins). */
  static of(entries: readonly IndexTrunkEntry[]): TrunkRebuild {
    return new TrunkRebuild(0, { entries, parents: new Int32Array(entries.length), changed: new Uint8Array(entries.length) }, new Map());
  }

  /** Collects up to `budget` more blocks; true once every block is in. */
  fill(budget: number): boolean {
    const { entries, parents, changed } = this.base;
    const words = this.scratch;
    let left = budget;
    while (this.next < entries.length && left-- > 0) {
      const v = this.next++;
      if (changed[v] === 1 || parents[v] === DUPLICATE) continue;
      const entry = entries[v]!;
      const family = parseCidrInto(entry.ipAddress, words);
      if (family !== 0) this.collector.add(family, words, words[4]!, entry);
    }
    // The overlay is read live: a block changed after `seq` stays in the overlay past the swap,
    // so whatever is collected for it here is never the answer.
    while (this.overlay !== null && left-- > 0) {
      const step = this.overlay.next();
      if (step.done) this.overlay = null;
      else if (step.value.entry !== null) this.collector.add(step.value.family, step.value.words, step.value.prefix, step.value.entry);
    }
    return this.next >= entries.length && this.overlay === null;
  }

  /** The collected blocks (after `fill` said done), for `buildTrunkBase`. */
  get input(): TrunkBuildInput {
    return this.collector.result;
  }

  get entries(): readonly IndexTrunkEntry[] {
    return this.collector.entries;
  }
}

export class TrunkTable {
  private overlay = new Map<number | string, OverlayBlock>();
  /** How many overlay blocks have each prefix length, and those lengths longest first. */
  private readonly overlayCounts = { 4: new Uint32Array(33), 6: new Uint32Array(129) };
  private overlayPrefixes: { 4: number[]; 6: number[] } = { 4: [], 6: [] };
  private seq = 0;
  private live: number;
  private readonly scratch = new Uint32Array(4);

  private constructor(private base: Base) {
    this.live = base.entries.length - countDuplicates(base.parents);
  }

  /** A table of `entries` compiled at once (identical blocks: the first one given wins). */
  static build(entries: readonly IndexTrunkEntry[]): TrunkTable {
    const rebuild = TrunkRebuild.of(entries);
    rebuild.fill(Infinity);
    return TrunkTable.fromBuild(rebuild.entries, buildTrunkBase(rebuild.input));
  }

  /** A table from a build made elsewhere (a worker thread): the result of a full reload. */
  static fromBuild(entries: readonly IndexTrunkEntry[], output: TrunkBuildOutput): TrunkTable {
    return new TrunkTable(baseOf(entries, output));
  }

  /** Active blocks: the entries that can answer a lookup. */
  get size(): number {
    return this.live;
  }

  /** Blocks changed since the base was compiled. */
  get overlaySize(): number {
    return this.overlay.size;
  }

  /** True when the overlay is large enough that folding it into a new base pays. */
  get wantsRebuild(): boolean {
    return this.overlay.size >= Math.max(256, this.base.entries.length >> 3);
  }

  /** Sets the entry that block authenticates (null: none any more). O(1) besides a base lookup. */
  setBlock(block: TrunkBlock, entry: IndexTrunkEntry | null): void {
    const key = keyOf(block.family, block.words, block.prefix);
    let changed = this.overlay.get(key);
    let wasLive: boolean;
    if (changed === undefined) {
      const v = this.baseValueOf(this.base, block);
      wasLive = v >= 0;
      if (v >= 0) this.base.changed[v] = 1;
      const words = Array.from({ length: block.family === 4 ? 1 : 4 }, (_, w) => maskWord(block.words[w]!, w, block.prefix));
      changed = { family: block.family, words, prefix: block.prefix, entry, seq: 0 };
      this.overlay.set(key, changed);
      this.count(block.family, block.prefix, 1);
    } else wasLive = changed.entry !== null;
    changed.entry = entry;
    changed.seq = ++this.seq;
    this.live += (entry !== null ? 1 : 0) - (wasLive ? 1 : 0);
  }

  /** The entry of the most specific active block holding IPv4 `address`, or null. */
  lookup4(address: number): IndexTrunkEntry | null {
    const base = this.base;
    const found = base.table.lookup4(address);
    if (this.overlay.size === 0) return found < 0 ? null : base.entries[found]!;
    this.scratch[0] = address;
    return this.resolve(4, this.scratch, found);
  }

  /** The same for IPv6 `words` (four big-endian words). */
  lookup6(words: ArrayLike<number>): IndexTrunkEntry | null {
    const base = this.base;
    const found = base.table.lookup6(words);
    if (this.overlay.size === 0) return found < 0 ? null : base.entries[found]!;
    return this.resolve(6, words, found);
  }

  startRebuild(): TrunkRebuild {
    return new TrunkRebuild(this.seq, this.base, this.overlay);
  }

  /** Swaps in the base `rebuild` collected; blocks changed since it started stay in the overlay. */
  finishRebuild(rebuild: TrunkRebuild, output: TrunkBuildOutput): void {
    const base = baseOf(rebuild.entries, output);
    const kept = new Map<number | string, OverlayBlock>();
    this.overlayCounts[4].fill(0);
    this.overlayCounts[6].fill(0);
    for (const [key, block] of this.overlay) {
      if (block.seq <= rebuild.seq) continue;
      kept.set(key, block);
      this.overlayCounts[block.family][block.prefix]!++;
      const v = this.baseValueOf(base, block);
      if (v >= 0) base.changed[v] = 1;
    }
    this.base = base;
    this.overlay = kept;
    this.overlayPrefixes = { 4: prefixesOf(this.overlayCounts[4]), 6: prefixesOf(this.overlayCounts[6]) };
    let live = 0;
    for (let v = 0; v < base.entries.length; v++) if (base.changed[v] === 0 && base.parents[v] !== DUPLICATE) live++;
    for (const block of kept.values()) if (block.entry !== null) live++;
    this.live = live;
  }

  /** The base value of exactly `block`, or -1: the most specific block at its network address, then outwards. */
  private baseValueOf(base: Base, block: TrunkBlock): number {
    const words = block.words;
    let v = block.family === 4 ? base.table.lookup4(maskWord(words[0]!, 0, block.prefix)) : base.table.lookup6(Array.from({ length: 4 }, (_, w) => maskWord(words[w]!, w, block.prefix)));
    while (v >= 0 && base.prefixes[v]! > block.prefix) v = base.parents[v]!;
    return v >= 0 && base.prefixes[v] === block.prefix ? v : NONE;
  }

  /** A lookup while the overlay is not empty; `found` is the base's answer for `words`. */
  private resolve(family: 4 | 6, words: ArrayLike<number>, found: number): IndexTrunkEntry | null {
    const { changed, parents, prefixes, entries } = this.base;
    let v = found;
    while (v >= 0 && changed[v] === 1) v = parents[v]!;
    const floor = v < 0 ? -1 : prefixes[v]!;
    for (const prefix of this.overlayPrefixes[family]) {
      if (prefix <= floor) break;
      const block = this.overlay.get(keyOf(family, words, prefix));
      if (block !== undefined && block.entry !== null) return block.entry;
    }
    return v < 0 ? null : entries[v]!;
  }

  private count(family: 4 | 6, prefix: number, delta: number): void {
    const counts = this.overlayCounts[family];
    counts[prefix]! += delta;
    if (counts[prefix] === delta) this.overlayPrefixes[family] = prefixesOf(counts);
  }
}

function countDuplicates(parents: Int32Array): number {
  let n = 0;
  for (let v = 0; v < parents.length; v++) if (parents[v] === DUPLICATE) n++;
  return n;
}

/** The prefix lengths with a count, longest first. */
function prefixesOf(counts: Uint32Array): number[] {
  const out: number[] = [];
  for (let p = counts.length - 1; p >= 0; p--) if (counts[p]! > 0) out.push(p);
  return out;
}
