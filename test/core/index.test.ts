// The compiled decision index (api.md §4 decisions, §5 trunk lookup).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AccessList, Verdict } from '../../src/core/acl.ts';
import type { IndexAccount, IndexSnapshot, IndexTrunkEntry } from '../../src/core/index.ts';
import { DecisionIndex } from '../../src/core/index.ts';
import { cidrContains, parseCidr, parseIp } from '../../src/core/ip.ts';
import { TrunkTable } from '../../src/core/trunk-table.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

function account(id: string, realm: string, accessList: AccessList | null, devices: IndexAccount['devices'] = []): IndexAccount {
  return { id, realm, accessList, devices };
}

const officeOnly: AccessList = { order: 'allow,deny', cidrs: ['192.0.2.0/24', '2001:db8::/32'] };
const blockOne: AccessList = { order: 'deny,allow', cidrs: ['192.0.2.66'] };

function sampleIndex(): DecisionIndex {
  return DecisionIndex.build({
    accounts: [
      account(A, 'a.example.com', officeOnly, [
        { id: 'd1', username: 'alice', accessList: blockOne },
        { id: 'd2', username: 'bob', accessList: { order: 'allow,deny', cidrs: ['0.0.0.0/0'], user_agent: '^Yealink' } },
        { id: 'd3', username: 'carol' },
      ]),
      account(B, 'b.example.com', null),
    ],
    trunkEntries: [],
  });
}

describe('DecisionIndex: account and device lists must both allow', () => {
  const index = sampleIndex();
  test('account only', () => {
    assert.deepEqual(index.decide(A, undefined, '192.0.2.66', ''), {
      decision: 'allow',
      account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '192.0.2.0/24' },
    });
    assert.equal(index.decide(A, undefined, '198.51.100.1', '')?.decision, 'deny');
    assert.equal(index.decide(A, undefined, '192.0.2.66', '')?.decision, 'allow');
  });
  test('the device list can deny what the account allows', () => {
    const verdict = index.decide(A, 'd1', '192.0.2.66', '');
    assert.deepEqual(verdict, {
      decision: 'deny',
      account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '192.0.2.0/24' },
      device: { decision: 'deny', reason: 'matched', order: 'deny,allow', cidr: '192.0.2.66' },
    });
    assert.equal(index.decide(A, 'd1', '192.0.2.66', '')?.decision, 'deny');
    assert.equal(index.decide(A, 'd1', '192.0.2.67', '')?.decision, 'allow');
  });
  test('the account list can deny what the device allows', () => {
    assert.equal(index.decide(A, 'd1', '198.51.100.1', '')?.decision, 'deny');
    assert.equal(index.decide(A, 'd1', '198.51.100.1', '')?.decision, 'deny');
  });
  test('a device user agent applies at device level', () => {
    assert.equal(index.decide(A, 'd2', '192.0.2.1', 'Yealink SIP-T46S')?.decision, 'allow');
    assert.deepEqual(index.decide(A, 'd2', '192.0.2.1', 'Polycom')?.device, { decision: 'deny', reason: 'user_agent_mismatch', order: 'allow,deny' });
  });
  test('a device without a list, and an unknown device of a known account, are judged no_list', () => {
    assert.deepEqual(index.decide(A, 'd3', '192.0.2.1', '')?.device, { decision: 'allow', reason: 'no_list' });
    assert.deepEqual(index.decide(A, 'nope', '192.0.2.1', '')?.device, { decision: 'allow', reason: 'no_list' });
    assert.equal(index.decide(A, 'nope', '192.0.2.1', '')?.decision, 'allow');
    assert.equal(index.decide(A, 'nope', '198.51.100.1', '')?.decision, 'deny');
  });
  test('an account without a list allows everything', () => {
    assert.deepEqual(index.decide(B, undefined, '198.51.100.1', ''), { decision: 'allow', account: { decision: 'allow', reason: 'no_list' } });
  });
  test('unknown accounts and malformed sources', () => {
    assert.equal(index.decide('c'.repeat(32), undefined, '192.0.2.1', ''), null);
    assert.equal(index.decide(A, undefined, '192.0.2.300', ''), null);
    assert.equal(index.decide(A, undefined, 'fe80::1%eth0', ''), null);
  });
  test('IPv4-mapped sources are judged as IPv4', () => {
    assert.equal(index.decide(A, 'd1', '::ffff:192.0.2.66', '')?.decision, 'deny');
    assert.equal(index.decide(A, undefined, '::ffff:192.0.2.67', '')?.decision, 'allow');
  });
});

describe('DecisionIndex.decideByRealm', () => {
  const index = sampleIndex();
  test('the realm names the account and the username the device', () => {
    assert.deepEqual(index.decideByRealm('192.0.2.66', 'a.example.com', 'alice', '', 'deny'), {
      decision: 'deny',
      accountId: A,
      deviceId: 'd1',
      account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '192.0.2.0/24' },
      device: { decision: 'deny', reason: 'matched', order: 'deny,allow', cidr: '192.0.2.66' },
    });
  });
  test('realms are matched case-insensitively', () => {
    assert.equal(index.decideByRealm('192.0.2.1', 'A.Example.COM', 'alice', '', 'deny').accountId, A);
  });
  test('an unknown username is judged on the account list alone', () => {
    const verdict = index.decideByRealm('192.0.2.1', 'a.example.com', 'mallory', '', 'deny');
    assert.equal(verdict.decision, 'allow');
    assert.equal(verdict.deviceId, undefined);
    assert.equal(verdict.device, undefined);
  });
  test('an unknown realm follows the policy argument', () => {
    assert.deepEqual(index.decideByRealm('192.0.2.1', 'nowhere.example', 'alice', '', 'deny'), { decision: 'deny', reason: 'unknown_realm' });
    assert.deepEqual(index.decideByRealm('192.0.2.1', 'nowhere.example', 'alice', '', 'allow'), { decision: 'allow', reason: 'unknown_realm' });
  });
  test('a malformed source is denied', () => {
    assert.equal(index.decideByRealm('not-an-ip', 'a.example.com', 'alice', '', 'allow').decision, 'deny');
  });
});

describe('DecisionIndex changes take effect on the next decision', () => {
  test('putAccount replaces an account and its devices', () => {
    const index = sampleIndex();
    assert.equal(index.decide(A, undefined, '198.51.100.1', '')?.decision, 'deny');
    index.putAccount(account(A, 'a.example.com', { order: 'allow,deny', cidrs: ['198.51.100.0/24'] }));
    assert.equal(index.decide(A, undefined, '198.51.100.1', '')?.decision, 'allow');
    assert.equal(index.decide(A, undefined, '192.0.2.1', '')?.decision, 'deny');
    assert.equal(index.decide(A, 'd1', '198.51.100.1', '')?.decision, 'allow', 'd1 is gone: no device list');
  });
  test('putAccount adds a new account', () => {
    const index = sampleIndex();
    const C = 'c'.repeat(32);
    assert.equal(index.hasAccount(C), false);
    index.putAccount(account(C, 'c.example.com', blockOne));
    assert.equal(index.accountCount, 3);
    assert.equal(index.decide(C, undefined, '192.0.2.66', '')?.decision, 'deny');
    assert.equal(index.decideByRealm('192.0.2.1', 'c.example.com', 'x', '', 'deny').accountId, C);
  });
  test('removeAccount forgets the account and its realm', () => {
    const index = sampleIndex();
    index.removeAccount(A);
    assert.equal(index.hasAccount(A), false);
    assert.equal(index.decide(A, undefined, '192.0.2.1', ''), null);
    assert.deepEqual(index.decideByRealm('192.0.2.1', 'a.example.com', 'alice', '', 'deny'), { decision: 'deny', reason: 'unknown_realm' });
    index.removeAccount(A); // twice is harmless
    assert.equal(index.accountCount, 1);
  });
  test('a realm change moves the account to the new realm', () => {
    const index = sampleIndex();
    index.putAccount(account(A, 'new.example.com', officeOnly));
    assert.equal(index.decideByRealm('192.0.2.1', 'new.example.com', 'x', '', 'deny').accountId, A);
    assert.equal(index.decideByRealm('192.0.2.1', 'a.example.com', 'x', '', 'deny').reason, 'unknown_realm');
  });
  test('a realm freed by one account and taken by another', () => {
    const index = sampleIndex();
    index.putAccount(account(A, 'new.example.com', officeOnly));
    index.putAccount(account(B, 'a.example.com', null));
    index.putAccount(account(A, 'newer.example.com', officeOnly));
    assert.equal(index.decideByRealm('192.0.2.1', 'a.example.com', 'x', '', 'deny').accountId, B);
    index.removeAccount(A);
    assert.equal(index.decideByRealm('192.0.2.1', 'a.example.com', 'x', '', 'deny').accountId, B);
  });
});

describe('DecisionIndex.lookupTrunk', () => {
  const entries: IndexTrunkEntry[] = [
    { id: 'e1', accountId: A, trunkId: 't1', ipAddress: '203.0.113.0/24' },
    { id: 'e2', accountId: A, trunkId: 't2', ipAddress: '203.0.113.50' },
    { id: 'e3', accountId: B, trunkId: 't3', ipAddress: '2001:db8:1::/48' },
    { id: 'e4', accountId: B, trunkId: 't3', ipAddress: '198.51.100.0/25' },
  ];
  const index = DecisionIndex.build({ accounts: [], trunkEntries: entries });
  test('longest prefix wins', () => {
    assert.deepEqual(index.lookupTrunk('203.0.113.50'), { ip: '203.0.113.50', accountId: A, trunkId: 't2', ipAclId: 'e2', ipAddress: '203.0.113.50' });
    assert.equal(index.lookupTrunk('203.0.113.51')?.ipAclId, 'e1');
  });
  test('IPv6 entries, canonical source text, mapped sources', () => {
    assert.deepEqual(index.lookupTrunk('2001:DB8:1:0::7'), { ip: '2001:db8:1::7', accountId: B, trunkId: 't3', ipAclId: 'e3', ipAddress: '2001:db8:1::/48' });
    assert.equal(index.lookupTrunk('::ffff:198.51.100.1')?.ip, '198.51.100.1');
    assert.equal(index.lookupTrunk('::ffff:198.51.100.1')?.ipAclId, 'e4');
  });
  test('no entry, or not an address', () => {
    assert.equal(index.lookupTrunk('198.51.100.128'), null);
    assert.equal(index.lookupTrunk('2001:db8:2::1'), null);
    assert.equal(index.lookupTrunk('bogus'), null);
  });
  test('replaceTrunks swaps in a table built aside', () => {
    const changing = DecisionIndex.build({ accounts: [], trunkEntries: entries });
    changing.replaceTrunks(TrunkTable.build(entries.slice(0, 1)));
    assert.equal(changing.trunkEntryCount, 1);
    assert.equal(changing.lookupTrunk('203.0.113.50')?.ipAclId, 'e1');
  });
  test("trunkEntryFor (the edge's lookup) finds the entry lookupTrunk names, itself", () => {
    const sources = ['203.0.113.50', '203.0.113.51', '2001:DB8:1:0::7', '::ffff:198.51.100.1', '198.51.100.127', '198.51.100.128', '2001:db8:2::1', 'bogus', ''];
    for (const ip of sources) assert.equal(index.trunkEntryFor(ip)?.id, index.lookupTrunk(ip)?.ipAclId, ip);
    assert.equal(index.trunkEntryFor('203.0.113.50'), entries[1]);
    assert.equal(index.trunkEntryFor('::ffff:198.51.100.1'), entries[3]);
    assert.equal(index.trunkEntryFor('198.51.100.128'), null);
  });
});

// ---- decide() against a naive evaluator written from the api.md §4 table ----------------------

interface NaivePart {
  decision: Verdict;
  reason: string;
}

function naiveList(list: AccessList | null | undefined, source: string, userAgent: string): NaivePart {
  if (!list) return { decision: 'allow', reason: 'no_list' };
  const allowIfIn = list.order === 'allow,deny';
  if (list.user_agent !== undefined && !new RegExp(list.user_agent).test(userAgent)) return { decision: 'deny', reason: 'user_agent_mismatch' };
  if (list.cidrs.length === 0) return { decision: allowIfIn ? 'deny' : 'allow', reason: 'empty_list' };
  const ip = parseIp(source)!;
  const inList = list.cidrs.some((text) => {
    const parsed = parseCidr(text);
    if (!parsed.ok) return false;
    // api.md §4: 0.0.0.0/0 matches every source, IPv6 included.
    if (parsed.cidr.network.family === 4 && parsed.cidr.prefix === 0) return true;
    return cidrContains(parsed.cidr, ip);
  });
  if (inList) return { decision: allowIfIn ? 'allow' : 'deny', reason: 'matched' };
  return { decision: allowIfIn ? 'deny' : 'allow', reason: 'not_matched' };
}

const pool4 = ['192.0.2.0/24', '192.0.2.128/25', '192.0.2.7', '198.51.100.0/24', '10.0.0.0/8', '0.0.0.0/0', '203.0.113.0/28'];
const pool6 = ['2001:db8::/32', '2001:db8::7', '::/0', 'fe80::/10', '2001:db8:0:1::/64'];
const sources = ['192.0.2.7', '192.0.2.200', '192.0.2.1', '198.51.100.9', '10.9.9.9', '203.0.113.15', '203.0.113.16', '8.8.8.8', '::ffff:192.0.2.7', '2001:db8::7', '2001:db8:0:1::9', '2001:db9::1', 'fe80::1', '::1'];
const agents = ['', 'Yealink SIP-T46S', 'Polycom VVX', 'yealink'];

const listArb: fc.Arbitrary<AccessList | null> = fc.option(
  fc.record(
    {
      order: fc.constantFrom<AccessList['order']>('allow,deny', 'deny,allow'),
      cidrs: fc.subarray([...pool4, ...pool6]).chain((c) => fc.shuffledSubarray(c, { minLength: c.length, maxLength: c.length })),
      user_agent: fc.constantFrom('Yealink', '^Polycom', 'T4[0-9]S', '^$'),
    },
    { requiredKeys: ['order', 'cidrs'] },
  ),
  { freq: 3 },
);

describe('decide() agrees with a naive evaluator of the api.md §4 table', () => {
  test('random accounts, devices, sources and user agents', () => {
    fc.assert(
      fc.property(
        listArb,
        fc.array(listArb, { maxLength: 3 }),
        fc.constantFrom(...sources),
        fc.constantFrom(...agents),
        fc.option(fc.nat(4), { nil: undefined }),
        (accountList, deviceLists, source, userAgent, deviceIndex) => {
          const snapshot: IndexSnapshot = {
            accounts: [account(A, 'a.example.com', accountList, deviceLists.map((accessList, i) => ({ id: `d${i}`, username: `u${i}`, accessList })))],
            trunkEntries: [],
          };
          const index = DecisionIndex.build(snapshot);
          const deviceId = deviceIndex === undefined ? undefined : `d${deviceIndex}`;
          const verdict = index.decide(A, deviceId, source, userAgent)!;
          const accountPart = naiveList(accountList, source, userAgent);
          assert.equal(verdict.account.decision, accountPart.decision);
          assert.equal(verdict.account.reason, accountPart.reason);
          let expected = accountPart.decision;
          if (deviceId !== undefined) {
            const devicePart = naiveList(deviceLists[deviceIndex!], source, userAgent);
            assert.equal(verdict.device?.decision, devicePart.decision);
            assert.equal(verdict.device?.reason, devicePart.reason);
            if (devicePart.decision === 'deny') expected = 'deny';
          } else {
            assert.equal(verdict.device, undefined);
          }
          assert.equal(verdict.decision, expected);
          const byRealm = index.decideByRealm(source, 'a.example.com', deviceId === undefined ? 'nobody' : `u${deviceIndex}`, userAgent, 'deny');
          if (deviceId === undefined || deviceIndex! < deviceLists.length) assert.equal(byRealm.decision, expected);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
