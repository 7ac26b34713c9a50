// PrefixTable must answer exactly what a naive scan answers: the most specific block holding the
// address, the first listed among identical blocks, -1 when none does.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Cidr, Ip, Words } from '../../src/core/ip.ts';
import { broadcastOf, cidrContains, formatCidr, formatIp, networkOf, parseCidr } from '../../src/core/ip.ts';
import type { PrefixEntry } from '../../src/core/prefix-table.ts';
import { PrefixTable } from '../../src/core/prefix-table.ts';

function naiveLookup(entries: readonly PrefixEntry[], ip: Ip): number {
  let best: PrefixEntry | undefined;
  for (const entry of entries) {
    if (!cidrContains(entry.cidr, ip)) continue;
    if (best === undefined || entry.cidr.prefix > best.cidr.prefix) best = entry;
  }
  return best === undefined ? -1 : best.value;
}

function lookup(table: PrefixTable, ip: Ip): number {
  return ip.family === 4 ? table.lookup4(ip.value) : table.lookup6(ip.words);
}

function entriesOf(texts: readonly string[]): PrefixEntry[] {
  return texts.map((text, value) => {
    const parsed = parseCidr(text);
    assert.ok(parsed.ok, text);
    return { cidr: parsed.cidr, value };
  });
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** Addresses clustered near a few bases, so that blocks nest and probes land on edges. */
const v4Base = fc.constantFrom(0, 0x0a000000, 0xc0a80000, 0xcb007100, 0xffffff00, 0x7fffffff);
const v4Address = fc.oneof(u32, fc.tuple(v4Base, fc.integer({ min: 0, max: 0x1ffff })).map(([b, d]) => (b + d) >>> 0));
const v6Address: fc.Arbitrary<Words> = fc.oneof(
  fc.tuple(u32, u32, u32, u32),
  fc.tuple(fc.constantFrom(0x20010db8, 0, 0xffffffff, 0xfe800000), fc.constantFrom(0, 1, 0xffffffff), u32, fc.constantFrom(0, 1, 0xffffffff, 0x80000000)),
);

const v4Block: fc.Arbitrary<Cidr> = fc
  .tuple(v4Address, fc.oneof(fc.integer({ min: 0, max: 32 }), fc.constantFrom(0, 8, 16, 24, 32)))
  .map(([value, prefix]) => ({ network: networkOf({ family: 4, value }, prefix), prefix }));
const v6Block: fc.Arbitrary<Cidr> = fc
  .tuple(v6Address, fc.oneof(fc.integer({ min: 0, max: 128 }), fc.constantFrom(0, 32, 48, 64, 96, 127, 128)))
  .map(([words, prefix]) => ({ network: networkOf({ family: 6, words }, prefix), prefix }));

/** A chain of blocks nested inside each other around one address. */
function nestedChain(block: fc.Arbitrary<Cidr>): fc.Arbitrary<Cidr[]> {
  return fc.tuple(block, fc.array(fc.nat(128), { maxLength: 6 })).map(([outer, prefixes]) => {
    const bits = outer.network.family === 4 ? 32 : 128;
    return [outer.prefix, ...prefixes.map((p) => Math.max(outer.prefix, p % (bits + 1)))].map((prefix) => ({
      network: networkOf(outer.network, prefix),
      prefix,
    }));
  });
}

const blockSet: fc.Arbitrary<Cidr[]> = fc
  .tuple(
    fc.array(v4Block, { maxLength: 12 }),
    fc.array(v6Block, { maxLength: 12 }),
    fc.array(fc.oneof(nestedChain(v4Block), nestedChain(v6Block)), { maxLength: 3 }),
  )
  .chain(([a, b, chains]) => {
    const all = [...a, ...b, ...chains.flat()];
    // Duplicates: repeat some blocks later in the list.
    return fc.subarray(all).map((again) => [...all, ...again]);
  })
  .chain((blocks) => fc.shuffledSubarray(blocks, { minLength: blocks.length, maxLength: blocks.length }));

function addOne(ip: Ip, delta: 1 | -1): Ip {
  if (ip.family === 4) return { family: 4, value: (ip.value + delta) >>> 0 };
  const w = [...ip.words];
  for (let i = 3; i >= 0; i--) {
    const next = (w[i]! + delta) >>> 0;
    const carry = delta === 1 ? next === 0 : w[i] === 0;
    w[i] = next;
    if (!carry) break;
  }
  return { family: 6, words: [w[0]!, w[1]!, w[2]!, w[3]!] };
}

/** Each block's first and last address and their neighbours. */
function edgeProbes(blocks: readonly Cidr[]): Ip[] {
  return blocks.flatMap((c) => {
    const first = c.network;
    const last = broadcastOf(c.network, c.prefix);
    return [first, last, addOne(first, -1), addOne(last, 1)];
  });
}

function checkAgainstNaive(blocks: readonly Cidr[], randomProbes: readonly Ip[]): void {
  const entries = blocks.map((cidr, value) => ({ cidr, value }));
  const table = PrefixTable.build(entries);
  assert.equal(table.size, entries.length);
  for (const probe of [...randomProbes, ...edgeProbes(blocks)]) {
    const expected = naiveLookup(entries, probe);
    const actual = lookup(table, probe);
    if (actual !== expected) {
      const listed = blocks.length > 40 ? `${blocks.length} blocks` : `[${blocks.map(formatCidr).join(', ')}]`;
      assert.fail(`${formatIp(probe)}: table says ${actual}, naive says ${expected} over ${listed}`);
    }
  }
}

const probes = fc.array(
  fc.oneof(v4Address.map((value): Ip => ({ family: 4, value })), v6Address.map((words): Ip => ({ family: 6, words }))),
  { maxLength: 30 },
);

describe('PrefixTable', () => {
  test('examples: most specific wins, first listed on ties, -1 outside', () => {
    const table = PrefixTable.build(entriesOf(['10.0.0.0/8', '10.1.0.0/16', '10.1.2.3', '10.1.0.0/16', '::/0', '2001:db8::/32', '2001:db8::1']));
    assert.equal(table.lookup4(0x0a000001), 0);
    assert.equal(table.lookup4(0x0a010001), 1);
    assert.equal(table.lookup4(0x0a010203), 2);
    assert.equal(table.lookup4(0x0a01ffff), 1);
    assert.equal(table.lookup4(0x0a020000), 0);
    assert.equal(table.lookup4(0x0b000000), -1);
    assert.equal(table.lookup4(0x09ffffff), -1);
    assert.equal(table.lookup6([0x20010db8, 0, 0, 1]), 6);
    assert.equal(table.lookup6([0x20010db8, 0, 0, 2]), 5);
    assert.equal(table.lookup6([0x20010db9, 0, 0, 0]), 4);
  });

  test('among identical blocks the one listed first wins, whatever its value', () => {
    const [a, b] = entriesOf(['192.0.2.0/24', '192.0.2.0/24']);
    assert.equal(PrefixTable.build([{ cidr: a!.cidr, value: 9 }, { cidr: b!.cidr, value: 3 }]).lookup4(0xc0000201), 9);
    assert.equal(PrefixTable.build([{ cidr: b!.cidr, value: 3 }, { cidr: a!.cidr, value: 9 }]).lookup4(0xc0000201), 3);
  });

  test('the same with enough IPv4 blocks for the native key sort (first listed wins, not the smaller value)', () => {
    const filler = entriesOf(Array.from({ length: 400 }, (_, i) => `198.51.${i >> 8}.${i & 255}`));
    const [a, b] = entriesOf(['192.0.2.0/24', '192.0.2.0/24']);
    const build = (first: number, second: number) => PrefixTable.build([...filler, { cidr: a!.cidr, value: first }, { cidr: b!.cidr, value: second }, ...filler]);
    assert.equal(build(900, 300).lookup4(0xc0000201), 900);
    assert.equal(build(300, 900).lookup4(0xc0000201), 300);
    assert.equal(build(300, 900).lookup4(0xc6330105), 261);
  });

  test('the same with enough IPv6 blocks for the leading-bits key sort, ties on those bits included', () => {
    // 400 host blocks share their first 64 bits (one run for the comparator), 300 /48s do not.
    const filler = entriesOf([...Array.from({ length: 400 }, (_, i) => `2001:db8::${i.toString(16)}`), ...Array.from({ length: 300 }, (_, i) => `2001:db8:${((i + 1) * 97).toString(16)}::/48`)]);
    const [a, b] = entriesOf(['2001:db8::/64', '2001:db8::/64']);
    const build = (first: number, second: number) => PrefixTable.build([...filler, { cidr: a!.cidr, value: first }, { cidr: b!.cidr, value: second }, ...filler]);
    assert.equal(build(900, 300).lookup6([0x20010db8, 0, 0, 0xffff]), 900);
    assert.equal(build(300, 900).lookup6([0x20010db8, 0, 0, 0xffff]), 300);
    const table = build(900, 300);
    for (const [i, { cidr }] of filler.entries()) {
      assert.equal(lookup(table, cidr.network), i, formatIp(cidr.network));
      assert.equal(lookup(table, broadcastOf(cidr.network, cidr.prefix)), i);
    }
  });

  test('an empty table finds nothing', () => {
    const table = PrefixTable.build([]);
    assert.equal(table.lookup4(0), -1);
    assert.equal(table.lookup4(0xffffffff), -1);
    assert.equal(table.lookup6([0, 0, 0, 0]), -1);
  });

  test('/0 and full-length blocks at both ends of the space', () => {
    const table = PrefixTable.build(entriesOf(['0.0.0.0/0', '0.0.0.0', '255.255.255.255', '::/0', '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']));
    assert.equal(table.lookup4(0), 1);
    assert.equal(table.lookup4(1), 0);
    assert.equal(table.lookup4(0xfffffffe), 0);
    assert.equal(table.lookup4(0xffffffff), 2);
    assert.equal(table.lookup6([0, 0, 0, 0]), 4);
    assert.equal(table.lookup6([0, 0, 0, 1]), 3);
    assert.equal(table.lookup6([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]), 5);
    assert.equal(table.lookup6([0xffffffff, 0xffffffff, 0xffffffff, 0xfffffffe]), 3);
  });

  test('agrees with a naive most-specific scan on random nested and disjoint sets', () => {
    fc.assert(fc.property(blockSet, probes, checkAgainstNaive), { numRuns: 2000 });
  });

  test('agrees with the naive scan on tables large enough for the jump table', () => {
    const large = fc.tuple(
      fc.array(v4Block, { minLength: 200, maxLength: 600 }),
      fc.array(v6Block, { minLength: 200, maxLength: 600 }),
      fc.array(fc.oneof(nestedChain(v4Block), nestedChain(v6Block)), { maxLength: 40 }),
    ).map(([a, b, c]) => [...a, ...b, ...c.flat(), ...a.slice(0, 20)]);
    fc.assert(fc.property(large, probes, checkAgainstNaive), { numRuns: 25 });
  });

  test('a dense table of many /24s and /32s under one /8', () => {
    const texts = ['10.0.0.0/8'];
    for (let i = 0; i < 5000; i++) texts.push(i % 2 ? `10.${(i * 7) & 255}.${i & 255}.0/24` : `10.${(i * 13) & 255}.${(i * 3) & 255}.${i & 255}`);
    const entries = entriesOf(texts);
    const table = PrefixTable.build(entries);
    for (const c of entries.map((e) => e.cidr)) {
      for (const probe of [c.network, broadcastOf(c.network, c.prefix), addOne(c.network, -1), addOne(broadcastOf(c.network, c.prefix), 1)]) {
        assert.equal(lookup(table, probe), naiveLookup(entries, probe), formatIp(probe));
      }
    }
  });

  test('dense IPv6 tables sharing 32 and 48 leading bits (the jump table reaches into the second word)', () => {
    for (const base of ['2001:db8', '2001:db8:7']) {
      const texts = [`${base}::/${base.length > 8 ? 48 : 32}`];
      for (let i = 0; i < 3000; i++) {
        const h = ((i * 2654435761) >>> 0).toString(16).padStart(8, '0');
        const tail = base.length > 8 ? `${h.slice(0, 4)}:${h.slice(4)}` : `${h.slice(0, 4)}:${h.slice(4)}:1`;
        texts.push(i % 3 ? `${base}:${tail}::/64` : `${base}:${tail}::${i.toString(16)}`);
      }
      const entries = entriesOf([...new Set(texts)].map((t) => (parseCidr(t).ok ? t : (parseCidr(t) as { network: string }).network)));
      const table = PrefixTable.build(entries);
      for (const c of entries.map((e) => e.cidr)) {
        for (const probe of [c.network, broadcastOf(c.network, c.prefix), addOne(c.network, -1), addOne(broadcastOf(c.network, c.prefix), 1)]) {
          assert.equal(lookup(table, probe), naiveLookup(entries, probe), formatIp(probe));
        }
      }
    }
  });
});
