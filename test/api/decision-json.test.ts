// The decision answers' `data` (src/api/resources/access-lists.ts) is written out by hand: it must
// be exactly JSON.stringify's text of the same object, for every shape a decision can take.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decisionJson, realmDecisionJson } from '../../src/api/resources/access-lists.ts';
import { explainList, type ListDecision } from '../../src/core/acl.ts';
import type { AccountDecision, RealmDecision } from '../../src/services/decision-types.ts';

// Every part explainList can return (and the part of a device with no list), plus CIDR texts
// JSON must escape, which a stored list cannot hold but the serializer must not trust.
const CIDRS = ['10.0.0.0/8', '2001:db8::/32', 'a"b\\c', 'é☎\u0001'];
const PARTS: ListDecision[] = [{ decision: 'allow', reason: 'no_list' }];
for (const order of ['allow,deny', 'deny,allow'] as const) {
  for (const userAgent of ['ok', 'mismatch', 'invalid'] as const) {
    PARTS.push(explainList(order, userAgent, [], -1));
    for (let found = -1; found < CIDRS.length; found++) PARTS.push(explainList(order, userAgent, CIDRS, found));
  }
}

test('the check answer equals JSON.stringify of the decision, with and without a device part', () => {
  let shapes = 0;
  for (const account of PARTS) {
    for (const device of [undefined, ...PARTS]) {
      const verdict: AccountDecision = device === undefined ? { decision: account.decision, account } : { decision: 'deny', account, device };
      const json = decisionJson(verdict);
      assert.equal(json, JSON.stringify(verdict));
      assert.deepEqual(JSON.parse(json), verdict);
      shapes++;
    }
  }
  assert.ok(shapes > 500);
});

test("the decide answer equals JSON.stringify of the API's object (snake_case ids, absent fields left out)", () => {
  const answers: RealmDecision[] = [
    { decision: 'deny', reason: 'unknown_realm' },
    { decision: 'allow', reason: 'unknown_realm' },
    { decision: 'deny', accountId: '4f1c2a9e8d7b6c5a4f3e2d1c0b9a8f7e' },
  ];
  for (const account of PARTS) {
    answers.push({ decision: account.decision, accountId: 'acc"1', account });
    for (const device of PARTS.slice(0, 6)) answers.push({ decision: 'deny', accountId: 'acc1', deviceId: 'dev\\1', account, device });
  }
  for (const answer of answers) {
    const api: Record<string, unknown> = { decision: answer.decision };
    if (answer.reason) api.reason = answer.reason;
    if (answer.accountId) api.account_id = answer.accountId;
    if (answer.deviceId) api.device_id = answer.deviceId;
    if (answer.account) api.account = answer.account;
    if (answer.device) api.device = answer.device;
    assert.equal(realmDecisionJson(answer), JSON.stringify(api));
  }
});
