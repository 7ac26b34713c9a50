// The rule sets the SIP bench runs the edge against. Every source is the same list of addresses
// (what Kamailio's address file holds): each is a trunk IP ACL entry and a CIDR of the bench
// realm's account list. Pick one with --rules; add a source here to bench another reader.
import type { DecisionReader, IndexTrunkEntry, RealmDecision } from '../../src/services/decision-types.ts';
import { DecisionIndex } from '../../src/core/index.ts';

export const BENCH_REALM = 'bench.example';
const ACCOUNT = 'acct-bench';
const TRUNK = 'trunk-bench';

export type RuleSetSource = (addresses: readonly string[]) => DecisionReader;

export const RULE_SETS: Record<string, RuleSetSource> = {
  /** The production decision index (src/core/index.ts), built from a snapshot. */
  index: (addresses) => {
    const index = DecisionIndex.build({
      accounts: [{ id: ACCOUNT, realm: BENCH_REALM, accessList: { order: 'allow,deny', cidrs: [...addresses] }, devices: [] }],
      trunkEntries: addresses.map((ip, i) => ({ id: `acl-${i}`, accountId: ACCOUNT, trunkId: TRUNK, ipAddress: ip })),
    });
    return {
      trunkEntryFor: (ip) => index.trunkEntryFor(ip),
      decideByRealm: (ip, realm, username, userAgent) => index.decideByRealm(ip, realm, username, userAgent, 'deny'),
    };
  },
  /** Exact addresses in a Map and a Set: a floor for what a lookup can cost. */
  map: (addresses) => {
    const trunks = new Map<string, IndexTrunkEntry>(addresses.map((ip, i) => [ip, { id: `acl-${i}`, accountId: ACCOUNT, trunkId: TRUNK, ipAddress: ip }]));
    const allowed = new Set(addresses);
    return {
      trunkEntryFor: (ip) => trunks.get(ip) ?? null,
      decideByRealm: (ip, realm): RealmDecision => {
        if (realm !== BENCH_REALM) return { decision: 'deny', reason: 'unknown_realm' };
        const decision = allowed.has(ip) ? 'allow' : 'deny';
        return { decision, accountId: ACCOUNT, account: { decision, reason: decision === 'allow' ? 'matched' : 'not_matched' } };
      },
    };
  },
};

/** `count` distinct public IPv4 addresses (fixed seed, so every run holds the same), plus `extra`. */
export function benchAddresses(count: number, extra: readonly string[]): string[] {
  const addresses = new Set<string>(extra);
  let seed = 0x9e3779b9;
  const next = () => {
    // xorshift32: cheap and reproducible.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  while (addresses.size < count + extra.length) {
    const n = next();
    const first = 1 + ((n >>> 24) % 223);
    if (first === 10 || first === 100 || first === 127 || first === 169 || first === 172 || first === 192) continue;
    addresses.add(`${first}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`);
  }
  return [...addresses];
}
