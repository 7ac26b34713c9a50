// api.md §4: the meaning of one access list.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessList, Order } from '../../src/core/acl.ts';
import { checkUserAgent, compileUserAgent } from '../../src/core/acl.ts';
import { DecisionIndex } from '../../src/core/index.ts';

/** One list judged the way the product judges it: as an account's list in the decision index. */
function judge(list: AccessList | undefined, source: string, userAgent = '') {
  const index = DecisionIndex.build({ accounts: [{ id: 'a', realm: 'a.test', accessList: list ?? null, devices: [] }], trunkEntries: [] });
  const explained = index.decide('a', undefined, source, userAgent);
  assert.ok(explained, source);
  return explained.account;
}

describe('the truth table of api.md §4', () => {
  const table: { order: Order; uaMismatch: string; inList: string; notInList: string; empty: string }[] = [
    { order: 'allow,deny', uaMismatch: 'deny', inList: 'allow', notInList: 'deny', empty: 'deny' },
    { order: 'deny,allow', uaMismatch: 'deny', inList: 'deny', notInList: 'allow', empty: 'allow' },
  ];
  for (const row of table) {
    describe(row.order, () => {
      const list: AccessList = { order: row.order, cidrs: ['192.0.2.0/24', '2001:db8::/32'] };
      test(`user agent set and not matching → ${row.uaMismatch} (whether or not S is in L)`, () => {
        const withUa = { ...list, user_agent: '^Yealink' };
        for (const source of ['192.0.2.1', '198.51.100.1', '2001:db8::1']) {
          assert.deepEqual(judge(withUa, source, 'Polycom'), { decision: row.uaMismatch, reason: 'user_agent_mismatch', order: row.order });
        }
        assert.deepEqual(judge({ ...withUa, cidrs: [] }, '192.0.2.1', 'Polycom').reason, 'user_agent_mismatch');
      });
      test(`S in L → ${row.inList}`, () => {
        assert.deepEqual(judge(list, '192.0.2.77'), { decision: row.inList, reason: 'matched', order: row.order, cidr: '192.0.2.0/24' });
        assert.deepEqual(judge(list, '2001:db8:1::5'), { decision: row.inList, reason: 'matched', order: row.order, cidr: '2001:db8::/32' });
        assert.equal(judge({ ...list, user_agent: 'Yealink' }, '192.0.2.77', 'Yealink SIP-T46S').decision, row.inList);
      });
      test(`S not in L → ${row.notInList}`, () => {
        assert.deepEqual(judge(list, '198.51.100.1'), { decision: row.notInList, reason: 'not_matched', order: row.order });
        assert.deepEqual(judge(list, '2001:db9::1'), { decision: row.notInList, reason: 'not_matched', order: row.order });
      });
      test(`L empty → ${row.empty}`, () => {
        assert.deepEqual(judge({ order: row.order, cidrs: [] }, '192.0.2.1'), { decision: row.empty, reason: 'empty_list', order: row.order });
        assert.deepEqual(judge({ order: row.order, cidrs: [] }, '::1'), { decision: row.empty, reason: 'empty_list', order: row.order });
      });
    });
  }
  test('a missing list allows', () => {
    assert.deepEqual(judge(undefined, '192.0.2.1', 'anything'), { decision: 'allow', reason: 'no_list' });
  });
});

describe('address matching', () => {
  test('0.0.0.0/0 matches IPv6 sources too (KAZOO compatible)', () => {
    const list: AccessList = { order: 'allow,deny', cidrs: ['192.0.2.0/24', '0.0.0.0/0'] };
    assert.deepEqual(judge(list, '2001:db8::1'), { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '0.0.0.0/0' });
    assert.equal(judge(list, '8.8.8.8').cidr, '0.0.0.0/0');
    assert.equal(judge(list, '192.0.2.5').cidr, '192.0.2.0/24');
  });
  test('0.0.0.0/0 written as an IPv4-mapped block also matches IPv6 sources', () => {
    const list: AccessList = { order: 'allow,deny', cidrs: ['::ffff:0.0.0.0/96'] };
    assert.deepEqual(judge(list, '2001:db8::1'), { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '::ffff:0.0.0.0/96' });
  });
  test('an IPv6 block in the list is preferred to 0.0.0.0/0 for an IPv6 source', () => {
    const list: AccessList = { order: 'deny,allow', cidrs: ['0.0.0.0/0', '2001:db8::/32'] };
    assert.equal(judge(list, '2001:db8::1').cidr, '2001:db8::/32');
    assert.equal(judge(list, '2001:db9::1').cidr, '0.0.0.0/0');
  });
  test('::/0 matches only IPv6 sources', () => {
    const list: AccessList = { order: 'allow,deny', cidrs: ['::/0'] };
    assert.equal(judge(list, '2001:db8::1').decision, 'allow');
    assert.equal(judge(list, '::1').decision, 'allow');
    assert.deepEqual(judge(list, '192.0.2.1'), { decision: 'deny', reason: 'not_matched', order: 'allow,deny' });
    assert.equal(judge(list, '::ffff:192.0.2.1').decision, 'deny');
  });
  test('IPv4-mapped IPv6 sources are matched as IPv4', () => {
    const list: AccessList = { order: 'allow,deny', cidrs: ['192.0.2.0/24'] };
    assert.deepEqual(judge(list, '::ffff:192.0.2.9'), { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '192.0.2.0/24' });
    assert.equal(judge(list, '::FFFF:c000:0209').decision, 'allow');
    assert.equal(judge(list, '::ffff:198.51.100.1').decision, 'deny');
  });
  test('the most specific entry is the one reported', () => {
    const list: AccessList = { order: 'allow,deny', cidrs: ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.3'] };
    assert.equal(judge(list, '10.1.2.3').cidr, '10.1.2.3');
    assert.equal(judge(list, '10.1.2.4').cidr, '10.1.0.0/16');
    assert.equal(judge(list, '10.2.0.0').cidr, '10.0.0.0/8');
  });
  test('entries are reported as stored', () => {
    const list: AccessList = { order: 'allow,deny', cidrs: ['2001:0DB8::/32'] };
    assert.equal(judge(list, '2001:db8::1').cidr, '2001:0DB8::/32');
  });
});

describe('user_agent', () => {
  const list = (user_agent: string): AccessList => ({ order: 'allow,deny', cidrs: ['0.0.0.0/0'], user_agent });
  test('matched unanchored', () => {
    assert.equal(judge(list('Yealink'), '192.0.2.1', 'Foo Yealink SIP-T46S 66.86').decision, 'allow');
    assert.equal(judge(list('T4[0-9]S'), '192.0.2.1', 'Yealink SIP-T46S').decision, 'allow');
  });
  test('anchors in the pattern are honoured', () => {
    assert.equal(judge(list('^Yealink'), '192.0.2.1', 'Foo Yealink').decision, 'deny');
    assert.equal(judge(list('T46S$'), '192.0.2.1', 'Yealink SIP-T46S').decision, 'allow');
  });
  test('case-sensitive', () => {
    assert.equal(judge(list('Yealink'), '192.0.2.1', 'yealink').reason, 'user_agent_mismatch');
    assert.equal(judge(list('(?i)Yealink'), '192.0.2.1', 'yealink').decision, 'allow', 'unless the pattern asks otherwise');
  });
  test('a request without a User-Agent is matched as ""', () => {
    assert.equal(judge(list('Yealink'), '192.0.2.1', '').reason, 'user_agent_mismatch');
    assert.equal(judge(list('^$'), '192.0.2.1', '').decision, 'allow');
    assert.equal(judge(list('.*'), '192.0.2.1', '').decision, 'allow');
  });
  test('RE2 refuses backreferences and lookaround', () => {
    for (const pattern of ['(a)\\1', '(?=Yealink)', '(?!Polycom)', '(?<=x)y', '(?<!x)y']) {
      const compiled = compileUserAgent(pattern);
      assert.equal(compiled.ok, false, pattern);
      if (!compiled.ok) assert.match(compiled.message, /RE2/);
    }
  });
  test('invalid and over-long patterns are refused', () => {
    assert.equal(compileUserAgent('(').ok, false);
    assert.equal(compileUserAgent('a'.repeat(1025)).ok, false);
    assert.equal(compileUserAgent('a'.repeat(1024)).ok, true);
  });
  test('the classic ReDoS (a+)+$ completes promptly', { timeout: 5000 }, () => {
    const attack = `${'a'.repeat(1000)}!`;
    assert.deepEqual(judge(list('(a+)+$'), '192.0.2.1', attack), { decision: 'deny', reason: 'user_agent_mismatch', order: 'allow,deny' });
    assert.equal(judge(list('(a+)+$'), '192.0.2.1', 'a'.repeat(100_000)).decision, 'allow');
  });
  test('a User-Agent is cut to 1 KiB before matching', () => {
    assert.equal(judge(list('x$'), '192.0.2.1', `${'a'.repeat(1023)}x`).decision, 'allow');
    // The cut removes the 'x' (and a 100 k User-Agent costs what 1 KiB does).
    assert.equal(judge(list('x$'), '192.0.2.1', `${'a'.repeat(1024)}x`).reason, 'user_agent_mismatch');
    assert.equal(judge(list('x$'), '192.0.2.1', `${'a'.repeat(100_000)}x`).reason, 'user_agent_mismatch');
  });
  test('a stored pattern that does not compile denies (fails closed), whatever the order and source', () => {
    for (const order of ['allow,deny', 'deny,allow'] as const) {
      for (const cidrs of [[], ['0.0.0.0/0'], ['198.51.100.0/24']]) {
        assert.deepEqual(judge({ order, cidrs, user_agent: '(' }, '192.0.2.1', 'anything'), { decision: 'deny', reason: 'user_agent_invalid', order });
      }
    }
    // Reported when compiled, with its owner.
    const reported: unknown[] = [];
    const snapshot = { accounts: [{ id: 'a', realm: 'a.test', accessList: { order: 'deny,allow' as const, cidrs: [], user_agent: '[' }, devices: [{ id: 'd', username: 'u', accessList: { order: 'deny,allow' as const, cidrs: [], user_agent: '(?<x' } }, { id: 'e', username: 'v', accessList: list('ok') }] }], trunkEntries: [] };
    const index = DecisionIndex.build(snapshot, (...problem) => reported.push(problem));
    assert.deepEqual(reported, [['a', undefined, '['], ['a', 'd', '(?<x']]);
    assert.equal(index.decide('a', 'e', '192.0.2.1', 'ok')!.device!.reason, 'matched');
  });
  test('new patterns are bounded by the size of their compiled program', () => {
    assert.equal(checkUserAgent('x{256}').ok, false);
    assert.equal(checkUserAgent('x{200}').ok, true);
    assert.equal(checkUserAgent('[a-z]{1000}').ok, false);
    // The bound is for new patterns: a stored one still compiles for the index.
    assert.equal(compileUserAgent('[a-z]{1000}').ok, true);
  });
});
