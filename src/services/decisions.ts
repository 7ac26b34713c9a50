// Owns the live decision index: built from the store at start-up, then kept current by replaying
// the store's change feed. Every write calls `catchUp()` after its commit, so the next decision
// sees it; a poll (SQLite: a CLI process may share the file) or a notification (PostgreSQL: other
// nodes) calls it too. Catch-ups run one at a time, in feed order. Each change costs what it
// touched (one account, one trunk block), never a reload, and long catch-ups give the event loop
// back every few milliseconds (issue 23).

import type { AccessList, Verdict } from '../core/acl.ts';
import { compileUserAgent } from '../core/acl.ts';
import type { AccountDecision, IndexAccount, IndexSnapshot, IndexTrunkEntry, RealmDecision, TrunkMatch } from '../core/index.ts';
import { DecisionIndex } from '../core/index.ts';
import type { AccountRow, ChangeRow, DeviceRow, IndexIpAclRow, Store } from '../store/port.ts';
import type { DecisionReader } from './decision-types.ts';
import { pace } from '../store/turns.ts';
import type { SubjectBlock } from './trunk-blocks.ts';
import { blockOfSubject, blockSubject } from './trunk-blocks.ts';
import { TrunkBuilder } from './trunk-builder.ts';

/** Changes read from the feed at a time: a bulk load's thousands are applied a page at a time. */
export const CHANGES_PAGE = 256;
/** Block starts read back in one query: 128 took 3–5 ms of the loop during a bulk load, 32 under a millisecond. */
const STARTS_A_READ = 32;

/** A stored user-agent pattern that does not compile: its list denies every request. */
export interface InvalidUserAgent {
  accountId: string;
  deviceId?: string;
  pattern: string;
  message: string;
}

export interface DecisionsOptions {
  /** What an unknown realm gets (api.md §7: reject by default). */
  unknownRealm: Verdict;
  /** Told once per list and pattern (issue 20: the list fails closed, and someone must know). */
  onInvalidUserAgent?: (problem: InvalidUserAgent) => void;
}

/** Another in-memory view fed by the same change feed, loaded and advanced with the index. */
export interface ChangeFollower {
  load(): Promise<void>;
  apply(changes: readonly ChangeRow[]): Promise<void>;
}

export interface IndexStats {
  accounts: number;
  trunkEntries: number;
  /** Trunk blocks changed since the trunk table was last compiled (folded in aside when large). */
  trunkOverlay: number;
  lastRebuildMs: number;
  /** False while the last catch-up could not reach the database. */
  current: boolean;
  lastChangeId: number;
}

function indexAccount(account: AccountRow, devices: DeviceRow[]): IndexAccount {
  return {
    id: account.id,
    realm: account.realm,
    accessList: account.accessList,
    devices: devices.map((d) => ({ id: d.id, username: d.sipUsername, accessList: d.accessList })),
  };
}

/**
 * The index's trunk entries share one copy of each account and trunk id: every row read back
 * brings its own, and a carrier's entries name far fewer trunks (a server holding 100,000
 * entries on 100 trunks kept 209 B of heap an entry with copies apiece, 128 B sharing them). A
 * new set of copies starts with every full build, so the ids of deleted trunks do not pile up.
 */
class TrunkEntries {
  private readonly ids = new Map<string, string>();

  of(r: IndexIpAclRow): IndexTrunkEntry {
    return { id: r.id, accountId: this.shared(r.accountId), trunkId: this.shared(r.trunkId), ipAddress: r.ipAddress };
  }

  private shared(id: string): string {
    const kept = this.ids.get(id);
    if (kept !== undefined) return kept;
    this.ids.set(id, id);
    return id;
  }
}

function snapshotOf(accounts: AccountRow[], devices: DeviceRow[], trunkEntries: IndexTrunkEntry[]): IndexSnapshot {
  const byAccount = new Map<string, DeviceRow[]>();
  for (const d of devices) {
    const list = byAccount.get(d.accountId);
    if (list) list.push(d);
    else byAccount.set(d.accountId, [d]);
  }
  return {
    accounts: accounts.map((a) => indexAccount(a, byAccount.get(a.id) ?? [])),
    trunkEntries,
  };
}

export class Decisions implements DecisionReader {
  private index: DecisionIndex = DecisionIndex.build({ accounts: [], trunkEntries: [] });
  private trunkEntries = new TrunkEntries();
  /** Each indexed account's place in the hierarchy, so the decision API authorises from memory. */
  private paths = new Map<string, string>();
  /** Each indexed account's access list exactly as stored (null: none), read with its path. */
  private lists = new Map<string, AccessList | null>();
  private lastChangeId = 0;
  private running: Promise<void> = Promise.resolve();
  private pending: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastRebuildMs = 0;
  private current = false;
  private readonly builder = new TrunkBuilder();
  /** True while an overlay fold is being built. */
  private folding = false;
  /** The invalid patterns already reported, by owner and pattern. */
  private readonly reportedUserAgents = new Set<string>();
  private readonly reportInvalidUserAgent = (accountId: string, deviceId: string | undefined, pattern: string) => {
    const key = `${accountId}/${deviceId ?? ''}\u0000${pattern}`;
    const compiled = compileUserAgent(pattern);
    if (this.options.onInvalidUserAgent === undefined || this.reportedUserAgents.has(key) || compiled.ok) return;
    this.reportedUserAgents.add(key);
    this.options.onInvalidUserAgent({ accountId, ...(deviceId === undefined ? {} : { deviceId }), pattern, message: compiled.message });
  };
  /**
   * Awaited after each catch-up that applied changes, with the last change id: other copies of
   * the index (the SIP workers') apply it too before the write that caused it is answered.
   */
  onApplied: ((lastChangeId: number) => Promise<void>) | null = null;
  /** Called after every decision with its kind, result and duration in ms (metrics). */
  onDecision: ((kind: 'access_list' | 'realm' | 'trunk', result: string, ms: number) => void) | null = null;
  /** Called after the active trunk entries were re-read (api.md §9: the SBC feeds follow them). */
  onTrunksChanged: (() => void) | null = null;
  private readonly followers: ChangeFollower[] = [];

  constructor(
    private readonly store: Store,
    private readonly options: DecisionsOptions,
  ) {}

  /** `follower` is loaded with the index and then given every batch of changes, in feed order. */
  follow(follower: ChangeFollower): void {
    this.followers.push(follower);
  }

  /** Builds the whole index from the store and swaps it in. */
  async load(): Promise<void> {
    const started = performance.now();
    const repo = this.store.read;
    const lastChangeId = await repo.lastChangeId();
    for (const follower of this.followers) await follower.load();
    const [accounts, devices, entries] = await Promise.all([repo.listAccounts(), repo.listAllDevices(), repo.listActiveIndexIpAcls()]);
    this.trunkEntries = new TrunkEntries();
    this.index = DecisionIndex.build(snapshotOf(accounts, devices, entries.map((r) => this.trunkEntries.of(r))), this.reportInvalidUserAgent);
    this.paths = new Map(accounts.map((a) => [a.id, a.path]));
    this.lists = new Map(accounts.map((a) => [a.id, a.accessList]));
    this.lastChangeId = lastChangeId;
    this.lastRebuildMs = performance.now() - started;
    this.current = true;
  }

  /**
   * Applies every change committed since the last one applied. Calls made while one runs share
   * the next run, so a burst of writes costs one extra pass, not one each.
   */
  catchUp(): Promise<void> {
    if (this.pending) return this.pending;
    const next = this.running.then(() => {
      this.pending = null;
      return this.applyChanges();
    });
    this.pending = next;
    this.running = next.catch(() => undefined);
    return next;
  }

  private async applyChanges(): Promise<void> {
    const repo = this.store.read;
    const from = this.lastChangeId;
    for (;;) {
      let changes;
      try {
        changes = await repo.changesSince(this.lastChangeId, CHANGES_PAGE);
      } catch (error) {
        this.current = false;
        throw error;
      }
      if (changes.length > 0) await this.applyPage(changes);
      this.current = true;
      if (changes.length < CHANGES_PAGE) break;
    }
    if (this.lastChangeId !== from) await this.onApplied?.(this.lastChangeId);
  }

  /** Applies each change as itself: an account recompiled, a trunk block set; a full reload only for `trunks`. */
  private async applyPage(changes: ChangeRow[]): Promise<void> {
    const repo = this.store.read;
    const started = performance.now();
    const accounts = new Set<string>();
    const blocks = new Map<string, SubjectBlock>();
    let allTrunks = false;
    for (const change of changes) {
      if (change.kind === 'trunk_block') {
        const block = change.subject === null ? null : blockOfSubject(change.subject);
        if (block) blocks.set(change.subject!, block);
        else allTrunks = true;
      } else if (change.kind === 'trunks') allTrunks = true;
      else if (change.accountId !== null) accounts.add(change.accountId);
    }
    for (const id of accounts) {
      const account = await repo.getAccount(id);
      if (account) {
        this.index.putAccount(indexAccount(account, await repo.listDevices(id)));
        this.paths.set(id, account.path);
        this.lists.set(id, account.accessList);
      } else {
        this.index.removeAccount(id);
        this.paths.delete(id);
        this.lists.delete(id);
      }
      await pace();
    }
    if (allTrunks) {
      const entries = new TrunkEntries();
      this.index.replaceTrunks(await this.builder.build((await repo.listActiveIndexIpAcls()).map((r) => entries.of(r))));
      this.trunkEntries = entries;
    } else await this.applyBlocks(blocks);
    if (allTrunks || blocks.size > 0) this.onTrunksChanged?.();
    for (const follower of this.followers) await follower.apply(changes);
    this.lastChangeId = changes[changes.length - 1]!.id;
    this.lastRebuildMs = performance.now() - started;
    this.foldOverlayIfLarge();
  }

  /** Sets each changed block to its active entry with the smallest id (a full build's choice), or none. */
  private async applyBlocks(blocks: Map<string, SubjectBlock>): Promise<void> {
    for (const family of [4, 6] as const) {
      const changed = [...blocks].filter(([, block]) => block.family === family);
      const starts = [...new Set(changed.map(([, block]) => block.start))];
      const winners = new Map<string, IndexIpAclRow>();
      // A bulk load's thousand blocks are read back a slice at a time, the loop given back between.
      for (let i = 0; i < starts.length; i += STARTS_A_READ) {
        for (const row of await this.store.read.listActiveIpAclsStartingAt(family, starts.slice(i, i + STARTS_A_READ))) {
          const subject = blockSubject(row);
          const winner = winners.get(subject);
          if (winner === undefined || row.id < winner.id) winners.set(subject, row);
        }
        await pace();
      }
      for (const [subject, block] of changed) {
        const winner = winners.get(subject);
        this.index.trunkTable.setBlock(block, winner ? this.trunkEntries.of(winner) : null);
        await pace();
      }
    }
  }

  /** Folds a large overlay into a new base, built aside; changes keep applying meanwhile. */
  private foldOverlayIfLarge(): void {
    const table = this.index.trunkTable;
    if (this.folding || !table.wantsRebuild) return;
    this.folding = true;
    const rebuild = table.startRebuild();
    this.builder
      .complete(rebuild)
      .then((output) => {
        // A full reload meanwhile replaced the table: this build is of no use.
        if (this.index.trunkTable === table) table.finishRebuild(rebuild, output);
      })
      .catch(() => undefined)
      .finally(() => {
        this.folding = false;
        // Changes applied meanwhile may have grown the overlay past the mark again.
        this.foldOverlayIfLarge();
      });
  }

  /** Polls the change feed every `ms` until `stop()`; failures mark the index as not current. */
  startPolling(ms: number): void {
    this.stop();
    this.timer = setInterval(() => {
      this.catchUp().catch(() => undefined);
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    void this.builder.close();
  }

  /** Marks the index as possibly stale (the database connection was lost). */
  markStale(): void {
    this.current = false;
  }

  stats(): IndexStats {
    return {
      accounts: this.index.accountCount,
      trunkEntries: this.index.trunkEntryCount,
      trunkOverlay: this.index.trunkTable.overlaySize,
      lastRebuildMs: this.lastRebuildMs,
      current: this.current,
      lastChangeId: this.lastChangeId,
    };
  }

  /** The account's path in the hierarchy, as of the last applied change; undefined if unknown. */
  accountPath(accountId: string): string | undefined {
    return this.paths.get(accountId);
  }

  /**
   * The account's stored access list (null: none) as of the last applied change, which every
   * write applies before it answers; undefined when the account is unknown or the index may be
   * behind the database (then read the database).
   */
  storedAccessList(accountId: string): AccessList | null | undefined {
    return this.current ? this.lists.get(accountId) : undefined;
  }

  hasDevice(accountId: string, deviceId: string): boolean {
    return this.index.hasDevice(accountId, deviceId);
  }

  decide(accountId: string, deviceId: string | undefined, ip: string, userAgent: string): AccountDecision | null {
    const started = performance.now();
    const verdict = this.index.decide(accountId, deviceId, ip, userAgent);
    this.onDecision?.('access_list', verdict?.decision ?? 'invalid', performance.now() - started);
    return verdict;
  }

  decideByRealm(ip: string, realm: string, username: string, userAgent: string): RealmDecision {
    const started = performance.now();
    const verdict = this.index.decideByRealm(ip, realm, username, userAgent, this.options.unknownRealm);
    this.onDecision?.('realm', verdict.decision, performance.now() - started);
    return verdict;
  }

  /** The API's trunk lookup (api.md §5): the matching entry, with the source's normal form. */
  lookupTrunk(ip: string): TrunkMatch | null {
    const started = performance.now();
    const match = this.index.lookupTrunk(ip);
    this.onDecision?.('trunk', match ? 'match' : 'no_match', performance.now() - started);
    return match;
  }

  /** The edge's: the entry alone. */
  trunkEntryFor(ip: string): IndexTrunkEntry | null {
    const started = performance.now();
    const entry = this.index.trunkEntryFor(ip);
    this.onDecision?.('trunk', entry ? 'match' : 'no_match', performance.now() - started);
    return entry;
  }
}
