// The incrementally kept trunk table (issue 23): after any sequence of block changes, with
// rebuilds started, filled in slices and swapped in between them, every lookup answers what a
// naive scan of the live blocks answers, and what a table compiled from scratch answers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cidrContains, parseCidr, parseCidrInto, parseIp, parseIpInto } from '../../src/core/ip.ts';
import type { IndexTrunkEntry, TrunkRebuild } from '../../src/core/trunk-table.ts';
import { buildTrunkBase, TrunkTable } from '../../src/core/trunk-table.ts';

// A small pool of nested and overlapping-start blocks, so that changes meet one another.
const BLOCKS = [
  '203.0.112.0/22', '203.0.113.0/24', '203.0.113.0/25', '203.0.113.0/32', '203.0.113.1/32', '203.0.113.64/26',
  '203.0.113.64/32', '203.0.113.128/25', '203.0.113.200/32', '203.0.114.0/24', '203.0.115.255/32', '198.51.100.0/24',
  '2001:db8::/32', '2001:db8::/48', '2001:db8::/128', '2001:db8:0:1::/64', '2001:db8:0:1::5/128', '2001:db8:ffff::/48',
];

function probes(): string[] {
  const out = ['203.0.111.255', '203.0.116.0', '198.51.101.0', '2001:db9::', '2001:db7:ffff::1', '0.0.0.0', '255.255.255.255', '::'];
  for (const text of BLOCKS) {
    const cidr = parseCidr(text);
    assert.ok(cidr.ok);
    const host = text.split('/')[0]!;
    out.push(host);
    if (cidr.cidr.network.family === 4) {
      const lo = cidr.cidr.network.value;
      const hi = lo + 2 ** (32 - cidr.cidr.prefix) - 1;
      for (const n of [lo - 1, hi, hi + 1, (lo + hi) >>> 1]) if (n >= 0 && n <= 0xffffffff) out.push([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'));
    } else {
      out.push(host.replace(/::$/, '::1'), host.replace(/::$/, '::ffff:ffff:ffff'), host.replace(/::$/, ':ffff::'));
    }
  }
  return out.filter((ip) => parseIp(ip) !== null);
}
const PROBES = probes();

type Live = Map<string, IndexTrunkEntry | null>;

function naiveLookup(live: Live, ip: string): string | null {
  const address = parseIp(ip)!;
  let best: { prefix: number; id: string } | null = null;
  for (const [text, entry] of live) {
    if (entry === null) continue;
    const parsed = parseCidr(text);
    if (!parsed.ok || !cidrContains(parsed.cidr, address)) continue;
    if (best === null || parsed.cidr.prefix > best.prefix) best = { prefix: parsed.cidr.prefix, id: entry.id };
  }
  return best?.id ?? null;
}

const words = new Uint32Array(4);
function lookup(table: TrunkTable, ip: string): string | null {
  const family = parseIpInto(ip, words);
  const entry = family === 4 ? table.lookup4(words[0]!) : table.lookup6(words);
  return entry?.id ?? null;
}

function blockOf(text: string) {
  const parsed = new Uint32Array(5);
  const family = parseCidrInto(text, parsed);
  if (family === 0) throw new Error(text);
  return { family, words: Array.from(parsed.slice(0, 4)), prefix: parsed[4]! };
}

type Op = { kind: 'set'; block: number; on: boolean } | { kind: 'start' } | { kind: 'fill'; budget: number } | { kind: 'finish' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('set' as const), block: fc.nat(BLOCKS.length - 1), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'start' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fill' as const), budget: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'finish' as const }) },
);

function check(table: TrunkTable, live: Live, step: string): void {
  const full = TrunkTable.build([...live.values()].filter((e): e is IndexTrunkEntry => e !== null));
  for (const ip of PROBES) {
    const expected = naiveLookup(live, ip);
    assert.equal(lookup(table, ip), expected, `${step}: ${ip}`);
    assert.equal(lookup(full, ip), expected, `${step}: ${ip} (full build)`);
  }
  assert.equal(table.size, [...live.values()].filter((e) => e !== null).length, `${step}: size`);
}

describe('TrunkTable: incremental changes agree with a naive scan and with a full build', () => {
  test('random sequences of block changes and sliced rebuilds', () => {
    let serial = 0;
    fc.assert(
      fc.property(fc.array(fc.nat(BLOCKS.length - 1), { maxLength: 10 }), fc.array(op, { maxLength: 60 }), (initial, ops) => {
        const live: Live = new Map();
        const start: IndexTrunkEntry[] = [];
        for (const b of initial) {
          const entry = { id: `e${serial++}`, accountId: 'a', trunkId: 't', ipAddress: BLOCKS[b]! };
          start.push(entry);
          // Identical blocks: the first one given wins.
          if (!live.get(BLOCKS[b]!)) live.set(BLOCKS[b]!, entry);
        }
        const table = TrunkTable.build(start);
        check(table, live, 'built');
        let rebuild: TrunkRebuild | null = null;
        let done = false;
        ops.forEach((o, i) => {
          if (o.kind === 'set') {
            const text = BLOCKS[o.block]!;
            const entry = o.on ? { id: `e${serial++}`, accountId: 'a', trunkId: 't', ipAddress: text } : null;
            table.setBlock(blockOf(text), entry);
            live.set(text, entry);
          } else if (o.kind === 'start' && rebuild === null) {
            rebuild = table.startRebuild();
            done = false;
          } else if (o.kind === 'fill' && rebuild !== null) {
            done = (rebuild as TrunkRebuild).fill(o.budget);
          } else if (o.kind === 'finish' && rebuild !== null) {
            const job: TrunkRebuild = rebuild;
            while (!done) done = job.fill(4);
            table.finishRebuild(job, buildTrunkBase(job.input));
            rebuild = null;
          }
          check(table, live, `op ${i} ${JSON.stringify(o)}`);
        });
      }),
      { numRuns: 300 },
    );
  });

  test('a removed block falls back to the block enclosing it, a new one wins over its parent', () => {
    const entries: IndexTrunkEntry[] = [
      { id: 'wide', accountId: 'a', trunkId: 't', ipAddress: '203.0.113.0/24' },
      { id: 'narrow', accountId: 'a', trunkId: 't', ipAddress: '203.0.113.0/25' },
      { id: 'host', accountId: 'a', trunkId: 't', ipAddress: '203.0.113.7' },
    ];
    const table = TrunkTable.build(entries);
    assert.equal(lookup(table, '203.0.113.7'), 'host');
    table.setBlock(blockOf('203.0.113.0/25'), null);
    table.setBlock(blockOf('203.0.113.7/32'), null);
    assert.equal(lookup(table, '203.0.113.7'), 'wide');
    table.setBlock(blockOf('203.0.113.6/31'), { id: 'pair', accountId: 'a', trunkId: 't', ipAddress: '203.0.113.6/31' });
    assert.equal(lookup(table, '203.0.113.7'), 'pair');
    assert.equal(lookup(table, '203.0.113.8'), 'wide');
    assert.equal(table.size, 2);
  });
});
