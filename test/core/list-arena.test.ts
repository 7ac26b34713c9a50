// The list arena (src/core/list-arena.ts) against a naive most-specific scan, on lists from empty
// to several levels of its search trees, at the ends of the address space too, and the index's
// compaction of it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AccessList } from '../../src/core/acl.ts';
import type { IndexAccount } from '../../src/core/index.ts';
import { DecisionIndex } from '../../src/core/index.ts';
import { ListArena } from '../../src/core/list-arena.ts';
import type { Cidr } from '../../src/core/ip.ts';
import { cidrContains, formatCidr, networkOf, parseCidr, parseIp, parseIpInto } from '../../src/core/ip.ts';

/** Index of the most specific entry holding `source` (first listed on ties), or -1. */
function naiveFind(cidrs: readonly string[], source: string): number {
  const ip = parseIp(source)!;
  let best = -1;
  let bestPrefix = -1;
  let everything = -1;
  cidrs.forEach((text, i) => {
    const cidr = parseCidr(text);
    if (!cidr.ok) return;
    const { network, prefix } = cidr.cidr;
    if (network.family === 4 && prefix === 0 && everything < 0) everything = i;
    if (cidrContains(cidr.cidr, ip) && prefix > bestPrefix) {
      best = i;
      bestPrefix = prefix;
    }
  });
  // api.md §4: 0.0.0.0/0 holds IPv6 sources too.
  return best < 0 && ip.family === 6 ? everything : best;
}

// Blocks drawn from a narrow space so that they nest, overlap and repeat often.
const v4Cidr = fc.oneof(
  { arbitrary: fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 32 })).map(([low, prefix]): string => {
    const cidr: Cidr = { network: networkOf({ family: 4, value: (0xc6330000 | low) >>> 0 }, Math.max(prefix, 14)), prefix: Math.max(prefix, 14) };
    return prefix === 0 ? '0.0.0.0/0' : formatCidr(cidr);
  }), weight: 9 },
  // The first and last addresses start or end the sorted intervals.
  { arbitrary: fc.constantFrom('0.0.0.0/32', '0.0.0.0/8', '255.255.255.255/32', '255.255.255.0/24', '128.0.0.0/1'), weight: 1 },
);
const v6Cidr = fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 16, max: 128 })).map(([a, b, prefix]): string => {
  const network = networkOf({ family: 6, words: [0x20010db8, (a << 16) >>> 0, b, 1] }, prefix);
  return formatCidr({ network, prefix });
});
const sourceArb = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((low) => `198.51.${low >> 8}.${low & 255}`),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })).map(([a, b]) => `2001:db8:${a.toString(16)}:0:${b.toString(16)}::1`),
  fc.constantFrom('203.0.113.1', '2a00::1', '::ffff:198.51.7.7', '0.0.0.0', '0.0.0.1', '255.255.255.254', '255.255.255.255'),
);
const listArb: fc.Arbitrary<AccessList> = fc.record({
  order: fc.constantFrom<AccessList['order']>('allow,deny', 'deny,allow'),
  cidrs: fc.array(fc.oneof(v4Cidr, v6Cidr), { maxLength: 80 }),
});

describe('ListArena', () => {
  test('find agrees with a naive most-specific scan (short and long lists)', () => {
    fc.assert(
      fc.property(listArb, fc.array(sourceArb, { minLength: 1, maxLength: 20 }), (list, sources) => {
        const arena = new ListArena(8);
        arena.add({ order: 'allow,deny', cidrs: ['10.0.0.0/8'] }); // the list under test is not at offset 0
        const handle = arena.add(list);
        const words = new Uint32Array(4);
        for (const source of sources) {
          const family = parseIpInto(source, words);
          assert.ok(family !== 0);
          const expected = naiveFind(list.cidrs, source);
          assert.equal(arena.find(handle, family, words), expected, `${source} in ${JSON.stringify(list.cidrs)}`);
        }
      }),
      { numRuns: 400 },
    );
  });
  test('a user agent that does not match is a mismatch; a stored pattern that does not compile is invalid', () => {
    const arena = new ListArena();
    const handle = arena.add({ order: 'deny,allow', cidrs: [], user_agent: '^Yealink' });
    assert.equal(arena.userAgentCheck(handle, 'Yealink T46S'), 'ok');
    assert.equal(arena.userAgentCheck(handle, 'Polycom'), 'mismatch');
    const broken = arena.add({ order: 'deny,allow', cidrs: [], user_agent: 'Yealink(' });
    assert.equal(arena.userAgentCheck(broken, 'Yealink('), 'invalid');
  });
});

describe('DecisionIndex: compaction of the arena keeps every decision', () => {
  test('many replacements of large lists, then every account checked', () => {
    const big = (seed: number): AccessList => ({ order: 'allow,deny', cidrs: Array.from({ length: 5000 }, (_, i) => `10.${seed & 255}.${i >> 8}.${i & 255}`) });
    const accounts: IndexAccount[] = Array.from({ length: 20 }, (_, i) => ({
      id: `acct${i}`,
      realm: `r${i}.example`,
      accessList: { order: 'allow,deny', cidrs: [`192.0.2.${i}`, `2001:db8::${i.toString(16)}`] },
      devices: [{ id: `dev${i}`, username: `u${i}`, accessList: { order: 'deny,allow', cidrs: ['192.0.2.0/24'], user_agent: `^Y${i}$` } }],
    }));
    const index = DecisionIndex.build({ accounts, trunkEntries: [] });
    // Each replacement leaves ~10,000 words of garbage: compaction runs several times.
    for (let round = 0; round < 40; round++) index.putAccount({ id: 'churn', realm: 'churn.example', accessList: big(round), devices: [] });
    for (let i = 0; i < 20; i++) {
      assert.equal(index.decide(`acct${i}`, undefined, `192.0.2.${i}`, '')?.decision, 'allow');
      assert.equal(index.decide(`acct${i}`, undefined, `192.0.2.${(i + 1) % 20}`, '')?.decision, 'deny');
      assert.equal(index.decide(`acct${i}`, undefined, `2001:db8::${i.toString(16)}`, '')?.decision, 'allow');
      assert.equal(index.decide(`acct${i}`, `dev${i}`, `192.0.2.${i}`, `Y${i}`)?.decision, 'deny', 'the device list denies it');
      assert.equal(index.decide(`acct${i}`, `dev${i}`, `192.0.2.${i}`, 'Polycom')?.device?.reason, 'user_agent_mismatch');
    }
    assert.equal(index.decide('churn', undefined, '10.39.19.135', '')?.decision, 'allow');
    assert.equal(index.decide('churn', undefined, '10.38.19.135', '')?.decision, 'deny');
    assert.equal(index.decide('churn', undefined, '10.39.19.135', '')?.account.cidr, '10.39.19.135');
  });
});
