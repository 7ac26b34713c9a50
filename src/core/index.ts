// The compiled decision index: every account's and device's access list, every realm, and every
// active trunk IP ACL entry, held in memory so a decision never touches the database.
//
// Decisions are synchronous, so replacing one account's compiled entry between two decisions is
// atomic: no decision can see a half-updated account. That is what lets one account change be
// applied by compiling that account alone (`putAccount`), while a full rebuild (`build`) makes a
// new index that the owner swaps in with one reference assignment.

import type { AccessList, ListDecision, Verdict } from './acl.ts';
import { explainList } from './acl.ts';
import { formatIPv4, formatIPv6, parseIpInto } from './ip.ts';
import { ListArena, NO_LIST } from './list-arena.ts';
import type { IndexTrunkEntry } from './trunk-table.ts';
import { TrunkTable } from './trunk-table.ts';

export type { IndexTrunkEntry } from './trunk-table.ts';

export interface IndexDevice {
  id: string;
  /** SIP username, unique within the account. */
  username: string;
  accessList?: AccessList | null;
}

export interface IndexAccount {
  id: string;
  realm: string;
  accessList?: AccessList | null;
  devices: IndexDevice[];
}


export interface IndexSnapshot {
  accounts: IndexAccount[];
  trunkEntries: IndexTrunkEntry[];
}

export interface TrunkMatch {
  ip: string;
  accountId: string;
  trunkId: string;
  ipAclId: string;
  ipAddress: string;
}

export interface AccountDecision {
  decision: Verdict;
  account: ListDecision;
  device?: ListDecision;
}

export interface RealmDecision {
  decision: Verdict;
  reason?: 'unknown_realm';
  accountId?: string;
  deviceId?: string;
  account?: ListDecision;
  device?: ListDecision;
}

// Each list lives in the index's ListArena; the objects below hold handles into it. Handles are
// mutable only so that compaction can move records (see `compact`).
interface CompiledDevice {
  readonly id: string;
  readonly username: string;
  list: number;
  /** The stored CIDRs of the device's list, to name the one that decided. */
  readonly cidrs: readonly string[];
}

interface CompiledAccount {
  readonly id: string;
  readonly realm: string;
  list: number;
  readonly cidrs: readonly string[];
  /** The devices that have a list (records in the arena): released and moved with the account's. */
  readonly listedDevices: readonly CompiledDevice[];
  readonly devicesById: Map<string, CompiledDevice>;
  readonly devicesByUsername: Map<string, CompiledDevice>;
}

const NO_CIDRS: readonly string[] = [];

function compileAccount(account: IndexAccount, arena: ListArena): CompiledAccount {
  const devicesById = new Map<string, CompiledDevice>();
  const devicesByUsername = new Map<string, CompiledDevice>();
  const listedDevices: CompiledDevice[] = [];
  for (const d of account.devices) {
    const list = d.accessList ? arena.add(d.accessList) : NO_LIST;
    const device: CompiledDevice = { id: d.id, username: d.username, list, cidrs: d.accessList?.cidrs ?? NO_CIDRS };
    devicesById.set(d.id, device);
    devicesByUsername.set(d.username, device);
    if (list !== NO_LIST) listedDevices.push(device);
  }
  return {
    id: account.id,
    realm: account.realm,
    list: account.accessList ? arena.add(account.accessList) : NO_LIST,
    cidrs: account.accessList?.cidrs ?? NO_CIDRS,
    listedDevices,
    devicesById,
    devicesByUsername,
  };
}

function releaseAccount(account: CompiledAccount, arena: ListArena): void {
  arena.remove(account.list);
  for (const device of account.listedDevices) arena.remove(device.list);
}

// One scratch for the parsed source: decisions run one at a time.
const source = new Uint32Array(4);

function sourceText(family: 4 | 6): string {
  return family === 4 ? formatIPv4(source[0]!) : formatIPv6([source[0]!, source[1]!, source[2]!, source[3]!]);
}

/** Told of each list compiled with a stored user-agent pattern that does not compile. */
export type InvalidUserAgentReport = (accountId: string, deviceId: string | undefined, pattern: string) => void;

export class DecisionIndex {
  private arena = new ListArena();

  private constructor(
    private readonly accounts: Map<string, CompiledAccount>,
    private readonly realms: Map<string, CompiledAccount>,
    private trunks: TrunkTable,
    private readonly onInvalidUserAgent: InvalidUserAgentReport | undefined,
  ) {}

  static build(snapshot: IndexSnapshot, onInvalidUserAgent?: InvalidUserAgentReport): DecisionIndex {
    const index = new DecisionIndex(new Map(), new Map(), TrunkTable.build(snapshot.trunkEntries), onInvalidUserAgent);
    for (const account of snapshot.accounts) index.putAccount(account);
    return index;
  }

  get accountCount(): number {
    return this.accounts.size;
  }

  get trunkEntryCount(): number {
    return this.trunks.size;
  }

  /** The trunk entries, changed a block at a time (see trunk-table.ts). */
  get trunkTable(): TrunkTable {
    return this.trunks;
  }

  /** Compiles one account (its list, its devices' lists, its realm) and swaps it in. */
  putAccount(account: IndexAccount): void {
    const compiled = compileAccount(account, this.arena);
    this.reportInvalidUserAgents(account, compiled);
    const previous = this.accounts.get(account.id);
    if (previous) releaseAccount(previous, this.arena);
    if (previous && previous.realm !== account.realm && this.realms.get(previous.realm) === previous) {
      this.realms.delete(previous.realm);
    }
    this.accounts.set(account.id, compiled);
    this.realms.set(account.realm, compiled);
    if (this.arena.wantsCompaction) this.compact();
  }

  /** A list whose stored pattern does not compile denies every request (fails closed): say so. */
  private reportInvalidUserAgents(account: IndexAccount, compiled: CompiledAccount): void {
    const report = this.onInvalidUserAgent;
    if (report === undefined) return;
    const arena = this.arena;
    if (compiled.list !== NO_LIST && arena.userAgentInvalid(compiled.list)) report(account.id, undefined, account.accessList!.user_agent!);
    for (const device of account.devices) {
      const list = compiled.devicesById.get(device.id)!.list;
      if (list !== NO_LIST && arena.userAgentInvalid(list)) report(account.id, device.id, device.accessList!.user_agent!);
    }
  }

  removeAccount(id: string): void {
    const previous = this.accounts.get(id);
    if (!previous) return;
    releaseAccount(previous, this.arena);
    this.accounts.delete(id);
    if (this.realms.get(previous.realm) === previous) this.realms.delete(previous.realm);
    if (this.arena.wantsCompaction) this.compact();
  }

  /**
   * Replaced lists leave garbage in the arena; once it is half the arena, the live records move
   * to a fresh one (a copy of typed-array words, no recompiling). Amortised over the changes
   * that made the garbage, this costs each change about as much as copying its own lists.
   */
  private compact(): void {
    const next = new ListArena(this.arena.liveWords);
    for (const account of this.accounts.values()) {
      account.list = this.arena.moveTo(next, account.list);
      for (const device of account.listedDevices) device.list = this.arena.moveTo(next, device.list);
    }
    this.arena = next;
  }

  /** Replaces the whole set of active trunk IP ACL entries with a table built aside. */
  replaceTrunks(table: TrunkTable): void {
    this.trunks = table;
  }

  hasAccount(id: string): boolean {
    return this.accounts.has(id);
  }

  hasDevice(accountId: string, deviceId: string): boolean {
    return this.accounts.get(accountId)?.devicesById.has(deviceId) ?? false;
  }

  /**
   * The decision with its explanation, or null when the account is unknown or `ip` is not an
   * address. An unknown device of a known account has no list: it is judged as 'no_list'.
   */
  decide(accountId: string, deviceId: string | undefined, ip: string, userAgent: string): AccountDecision | null {
    const account = this.accounts.get(accountId);
    if (account === undefined) return null;
    const family = parseIpInto(ip, source);
    if (family === 0) return null;
    return this.judge(account, deviceId === undefined ? undefined : account.devicesById.get(deviceId), deviceId !== undefined, family, userAgent);
  }

  /** What an edge asks: the realm names the account, the SIP username names a device. */
  decideByRealm(ip: string, realm: string, username: string, userAgent: string, unknownRealm: Verdict): RealmDecision {
    const account = this.realms.get(realm.toLowerCase());
    if (account === undefined) return { decision: unknownRealm, reason: 'unknown_realm' };
    const family = parseIpInto(ip, source);
    if (family === 0) return { decision: 'deny', accountId: account.id };
    const device = account.devicesByUsername.get(username);
    const verdict = this.judge(account, device, device !== undefined, family, userAgent);
    // Built field by field: spreading the verdict into a new object costs more than the decision.
    const answer: RealmDecision = { decision: verdict.decision, accountId: account.id, account: verdict.account };
    if (device !== undefined) {
      answer.deviceId = device.id;
      answer.device = verdict.device!;
    }
    return answer;
  }

  /** The active trunk IP ACL entry that `ip` authenticates (longest prefix), or null. */
  lookupTrunk(ip: string): TrunkMatch | null {
    const family = parseIpInto(ip, source);
    if (family === 0) return null;
    const entry = this.trunkEntryOfSource(family);
    if (entry === null) return null;
    return { ip: sourceText(family), accountId: entry.accountId, trunkId: entry.trunkId, ipAclId: entry.id, ipAddress: entry.ipAddress };
  }

  /** The same lookup without building an answer (the edge's fast path): the entry itself. */
  trunkEntryFor(ip: string): IndexTrunkEntry | null {
    const family = parseIpInto(ip, source);
    return family === 0 ? null : this.trunkEntryOfSource(family);
  }

  private trunkEntryOfSource(family: 4 | 6): IndexTrunkEntry | null {
    return family === 4 ? this.trunks.lookup4(source[0]!) : this.trunks.lookup6(source);
  }

  private judge(account: CompiledAccount, device: CompiledDevice | undefined, withDevice: boolean, family: 4 | 6, userAgent: string): AccountDecision {
    const accountPart = this.judgeList(account.list, account.cidrs, family, userAgent);
    if (!withDevice) return { decision: accountPart.decision, account: accountPart };
    const devicePart = this.judgeList(device?.list ?? NO_LIST, device?.cidrs ?? NO_CIDRS, family, userAgent);
    const decision = accountPart.decision === 'allow' && devicePart.decision === 'allow' ? 'allow' : 'deny';
    return { decision, account: accountPart, device: devicePart };
  }

  /** One list's part of a decision, with its reason (api.md §4), for the parsed `source`. */
  private judgeList(list: number, cidrs: readonly string[], family: 4 | 6, userAgent: string): ListDecision {
    if (list === NO_LIST) return { decision: 'allow', reason: 'no_list' };
    const arena = this.arena;
    return explainList(arena.order(list), arena.userAgentCheck(list, userAgent), cidrs, arena.find(list, family, source));
  }
}
