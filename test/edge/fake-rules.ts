// A DecisionReader the edge tests can set up and flip at will: exact-address trunks, and realms
// whose account list allows a set of addresses and optionally demands a User-Agent substring.
import type { DecisionReader, IndexTrunkEntry, RealmDecision, Verdict } from '../../src/services/decision-types.ts';

export interface FakeRealm {
  accountId: string;
  allow: string[];
  userAgent?: string;
  devices?: Record<string, string>;
}

export class FakeRules implements DecisionReader {
  readonly trunks = new Map<string, IndexTrunkEntry>();
  readonly realms = new Map<string, FakeRealm>();
  unknownRealm: Verdict = 'deny';
  /** Every decideByRealm call, to check what the edge asked. */
  readonly asked: Array<{ ip: string; realm: string; username: string; userAgent: string }> = [];

  addTrunk(ip: string, accountId: string, trunkId: string): this {
    this.trunks.set(ip, { id: `acl-${trunkId}`, accountId, trunkId, ipAddress: ip });
    return this;
  }

  addRealm(realm: string, rules: FakeRealm): this {
    this.realms.set(realm, rules);
    return this;
  }

  trunkEntryFor(ip: string): IndexTrunkEntry | null {
    return this.trunks.get(ip) ?? null;
  }

  decideByRealm(ip: string, realm: string, username: string, userAgent: string): RealmDecision {
    this.asked.push({ ip, realm, username, userAgent });
    const rules = this.realms.get(realm);
    if (rules === undefined) return { decision: this.unknownRealm, reason: 'unknown_realm' };
    const base = { accountId: rules.accountId, deviceId: rules.devices?.[username] };
    if (!rules.allow.includes(ip)) {
      return { ...base, decision: 'deny', account: { decision: 'deny', reason: 'not_matched', order: 'allow,deny' } };
    }
    if (rules.userAgent !== undefined && !userAgent.includes(rules.userAgent)) {
      return { ...base, decision: 'deny', account: { decision: 'deny', reason: 'user_agent_mismatch' } };
    }
    return { ...base, decision: 'allow', account: { decision: 'allow', reason: 'matched', order: 'allow,deny' } };
  }
}
