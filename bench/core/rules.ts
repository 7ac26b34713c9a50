// Synthetic but realistic rule sets for the core benchmark, generated from a seed so that every
// run (and every contender within a run) sees the same rules and the same queries.
//
// IPv4 prefixes are /8–/32 weighted towards long ones, as real ACLs are (mostly single hosts and
// /24s, a few wide blocks); IPv6 prefixes are /32–/128 (mostly /128, /64 and /48).

import type { AccessList } from '../../src/core/acl.ts';
import type { IndexAccount, IndexSnapshot, IndexTrunkEntry } from '../../src/core/index.ts';
import { formatIPv4, formatIPv6 } from '../../src/core/ip.ts';

/** mulberry32: a small, fast, seedable PRNG (not for anything but benchmarks). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rng = () => number;

const u32 = (rng: Rng) => (rng() * 4294967296) >>> 0;

function pick<T>(rng: Rng, weighted: readonly (readonly [number, T])[]): T {
  let r = rng();
  for (const [weight, value] of weighted) {
    if (r < weight) return value;
    r -= weight;
  }
  return weighted[weighted.length - 1]![1];
}

function v4Prefix(rng: Rng): number {
  return pick(rng, [
    [0.5, 32],
    [0.2, 24],
    [0.12, 25 + Math.floor(rng() * 7)], // /25–/31
    [0.1, 16 + Math.floor(rng() * 8)], // /16–/23
    [0.08, 8 + Math.floor(rng() * 8)], // /8–/15
  ]);
}

function v6Prefix(rng: Rng): number {
  return pick(rng, [
    [0.4, 128],
    [0.3, 64],
    [0.15, 48],
    [0.15, 32 + Math.floor(rng() * 96)],
  ]);
}

function mask(word: number, keep: number): number {
  if (keep >= 32) return word >>> 0;
  if (keep <= 0) return 0;
  return (word & (0xffffffff << (32 - keep))) >>> 0;
}

export interface Rule {
  readonly text: string;
  readonly family: 4 | 6;
  /** IPv4: [address]; IPv6: four words. The network address. */
  readonly words: readonly number[];
  readonly prefix: number;
}

/** A v6 address in one of a few hundred provider /32s, as real traffic concentrates. */
function v6Words(rng: Rng): number[] {
  const provider = 0x20010000 + Math.floor(rng() * 400) * 0x10000 + Math.floor(rng() * 16);
  return [provider >>> 0, u32(rng), u32(rng), u32(rng)];
}

export function randomRule(rng: Rng, v6Share: number): Rule {
  if (rng() < v6Share) {
    const prefix = v6Prefix(rng);
    const w = v6Words(rng).map((word, i) => mask(word, prefix - 32 * i));
    const text = formatIPv6([w[0]!, w[1]!, w[2]!, w[3]!]);
    return { text: asReceived(prefix === 128 ? text : `${text}/${prefix}`), family: 6, words: w, prefix };
  }
  const prefix = v4Prefix(rng);
  // Rules live in 1.0.0.0–199.255.255.255; sources meant to miss come from 200.0.0.0/8 upwards.
  const address = mask(0x01000000 + Math.floor(rng() * 0xc6ffffff), prefix);
  const text = formatIPv4(address);
  return { text: asReceived(prefix === 32 ? text : `${text}/${prefix}`), family: 4, words: [address], prefix };
}

/**
 * The text as a socket, an HTTP parser or a database driver hands it over: one flat string. The
 * formatters build an address with a template literal or concatenation, which V8 keeps as a rope
 * (a ConsString) once it is 13 characters or longer, and every contender (the Map.get floor too)
 * reading a rope ran about half as fast: a cost that no received address has. Rule texts too:
 * the index is built from rows the store read, and flattening a million ropes (then collecting
 * their pieces) was 15–30 % of building the 1 M-entry trunk table.
 */
function asReceived(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

/** A source address text of `family` (as received): inside `rule` (when given), or outside every rule. */
export function sourceIn(rng: Rng, family: 4 | 6, rule: Rule | undefined): string {
  return asReceived(sourceTextIn(rng, family, rule));
}

function sourceTextIn(rng: Rng, family: 4 | 6, rule: Rule | undefined): string {
  if (family === 4) {
    if (!rule || rule.family !== 4) return formatIPv4(0xc8000000 + Math.floor(rng() * 0x17ffffff));
    const host = rule.prefix >= 32 ? 0 : u32(rng) & (0xffffffff >>> rule.prefix);
    return formatIPv4((rule.words[0]! | host) >>> 0);
  }
  if (!rule || rule.family !== 6) {
    // Outside the rules' providers (2001::/23): elsewhere in 2a00::/12.
    return formatIPv6([(0x2a000000 + Math.floor(rng() * 0xfffff) * 16) >>> 0, u32(rng), u32(rng), u32(rng)]);
  }
  const w = rule.words.map((word, i) => (word | (~mask(0xffffffff, rule.prefix - 32 * i) & u32(rng))) >>> 0);
  return formatIPv6([w[0]!, w[1]!, w[2]!, w[3]!]);
}

export function randomRules(rng: Rng, count: number, v6Share = 0.3): Rule[] {
  return Array.from({ length: count }, () => randomRule(rng, v6Share));
}

/** Sources of one family, half inside some rule of that family, half outside all of them. */
export function randomSources(rng: Rng, rules: readonly Rule[], family: 4 | 6, count: number): string[] {
  const own = rules.filter((r) => r.family === family);
  return Array.from({ length: count }, () => sourceIn(rng, family, rng() < 0.5 && own.length > 0 ? own[Math.floor(rng() * own.length)] : undefined));
}

// ---- Question (b): the rules spread over accounts and devices ----------------------------------

export interface Query {
  accountId: string;
  deviceId: string | undefined;
  ip: string;
  userAgent: string;
}

export interface Tenancy {
  snapshot: IndexSnapshot;
  /** Every list in the snapshot with the parsed rules it holds (for the baselines). */
  lists: { accountId: string; deviceId: string | undefined; list: AccessList; rules: Rule[] }[];
  cidrCount: number;
}

const hex32 = (rng: Rng) => Array.from({ length: 4 }, () => u32(rng).toString(16).padStart(8, '0')).join('');

function listOf(rng: Rng, size: number, v6Share: number): { list: AccessList; rules: Rule[] } {
  const rules = randomRules(rng, size, v6Share);
  // Most tenants allow their offices and PBXs; some block a few abusers.
  const order = rng() < 0.85 ? 'allow,deny' : 'deny,allow';
  return { list: { order, cidrs: rules.map((r) => r.text) }, rules };
}

/**
 * `cidrCount` CIDRs over accounts and their devices: most lists are short (1–40 entries), a few
 * accounts hold long ones (up to 5,000), a third of devices have a list of their own.
 */
export function randomTenancy(rng: Rng, cidrCount: number, v6Share = 0.3): Tenancy {
  const accounts: IndexAccount[] = [];
  const lists: Tenancy['lists'] = [];
  let placed = 0;
  while (placed < cidrCount) {
    const id = hex32(rng);
    const long = rng() < 0.01;
    const accountSize = Math.min(cidrCount - placed, long ? 500 + Math.floor(rng() * 4500) : 1 + Math.floor(rng() * 40));
    const own = listOf(rng, accountSize, v6Share);
    placed += accountSize;
    lists.push({ accountId: id, deviceId: undefined, ...own });
    const devices: IndexAccount['devices'] = [];
    const deviceCount = Math.floor(rng() * 6);
    for (let d = 0; d < deviceCount; d++) {
      const deviceId = hex32(rng);
      let accessList: AccessList | null = null;
      if (rng() < 0.33 && placed < cidrCount) {
        const size = Math.min(cidrCount - placed, 1 + Math.floor(rng() * 10));
        const deviceList = listOf(rng, size, v6Share);
        placed += size;
        accessList = deviceList.list;
        lists.push({ accountId: id, deviceId, ...deviceList });
      }
      devices.push({ id: deviceId, username: `user${d}`, accessList });
    }
    accounts.push({ id, realm: `${id.slice(0, 12)}.example.net`, accessList: own.list, devices });
  }
  return { snapshot: { accounts, trunkEntries: [] }, lists, cidrCount: placed };
}

/** Decisions of one family against random lists, about half of the sources inside the list. */
export function randomQueries(rng: Rng, tenancy: Tenancy, family: 4 | 6, count: number): Query[] {
  const queries: Query[] = [];
  while (queries.length < count) {
    const { accountId, deviceId, rules } = tenancy.lists[Math.floor(rng() * tenancy.lists.length)]!;
    const own = rules.filter((r) => r.family === family);
    const inside = rng() < 0.5 && own.length > 0 ? own[Math.floor(rng() * own.length)] : undefined;
    queries.push({ accountId, deviceId, ip: sourceIn(rng, family, inside), userAgent: 'Yealink SIP-T46S 66.86.0.15' });
  }
  return queries;
}

/** The whole rule set as trunk entries (question (a): which entry holds this address). */
export function trunkEntriesOf(rules: readonly Rule[]): IndexTrunkEntry[] {
  return rules.map((r, i) => ({ id: `e${i}`, accountId: `a${i % 1000}`, trunkId: `t${i % 5000}`, ipAddress: r.text }));
}
