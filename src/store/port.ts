// The one persistence interface. Services hold a `Store`; every change goes through
// `store.transaction(fn)`, inside which `tx` sees its own writes and nothing is visible to anyone
// else until the function resolves. No business rules live below this line.

import type { AccessList } from '../core/acl.ts';

export type Json = Record<string, unknown>;

export interface AccountRow {
  id: string;
  name: string;
  nameKey: string;
  realm: string;
  parentId: string | null;
  path: string;
  superduper: boolean;
  /** SHA-256 (hex) of the API key: what api_auth looks up. */
  apiKeyHash: string;
  /** The API key sealed under the deployment's secret key (services/secrets.ts); null only before start-up sealed it. */
  apiKeySealed: string | null;
  accessList: AccessList | null;
  extra: Json;
  revision: string;
  created: string;
  modified: string;
}

export interface UserRow {
  id: string;
  accountId: string;
  username: string;
  passwordHash: string;
  /** HMAC of the user's credentials under the secret key, to find the user at login; null for hashes stored before it existed. */
  loginTag: string | null;
  privLevel: 'admin' | 'user';
  extra: Json;
  revision: string;
  created: string;
  modified: string;
}

export interface TokenRow {
  hash: string;
  accountId: string;
  ownerId: string | null;
  method: string;
  expiresAt: string;
  created: string;
}

export interface DeviceRow {
  id: string;
  accountId: string;
  name: string;
  sipUsername: string;
  enabled: boolean;
  accessList: AccessList | null;
  extra: Json;
  revision: string;
  created: string;
  modified: string;
}

export interface IpRow {
  ip: string;
  zone: string;
  host: string;
  assignedTo: string | null;
  revision: string;
  created: string;
  modified: string;
}

export interface TrunkRow {
  id: string;
  accountId: string;
  name: string;
  enabled: boolean;
  revision: string;
  created: string;
  modified: string;
}

export interface IpAclRow {
  id: string;
  trunkId: string;
  accountId: string;
  ipAddress: string;
  family: 4 | 6;
  rangeLo: string;
  rangeHi: string;
  prefix: number;
  description: string;
  enabled: boolean;
  revision: string;
  createdAt: string;
  updatedAt: string;
}

/** An active entry (it and its trunk enabled) that overlaps a queried range. */
export interface ActiveIpAcl extends IpAclRow {
  trunkEnabled: boolean;
}

/**
 * What the decision index keeps of an active entry, and all a catch-up reads back (issue 23: a
 * bulk load's rows are alive across many turns, and every column read is garbage to collect).
 */
export type IndexIpAclRow = Pick<IpAclRow, 'id' | 'trunkId' | 'accountId' | 'ipAddress' | 'family' | 'rangeLo' | 'prefix'>;

export interface AuditRow {
  id: string;
  seq: number;
  timestamp: string;
  accountId: string;
  actor: Json;
  /** Data changes are create/update/delete; `read` (an API key), `login` and `logout` record access. */
  action: 'create' | 'update' | 'delete' | 'read' | 'login' | 'logout';
  resource: string;
  resourceId: string;
  before: Json | null;
  after: Json | null;
}

/**
 * What changed, for the decision index: an account's data; one block of trunk IP ACL entries
 * (`trunk_block`, its subject the block, e.g. `4:cb007100/24`: the family, the network address
 * as fixed-width hex, the prefix); the whole trunk ACL set (`trunks`, a full reload); `ips`: the
 * dedicated-IP pool (an IP added, moved, assigned or released).
 */
export type ChangeKind = 'account' | 'account_deleted' | 'trunk_block' | 'trunks' | 'ips';

export interface ChangeRow {
  id: number;
  accountId: string | null;
  kind: ChangeKind;
  at: string;
  subject: string | null;
}

export interface IpFilter {
  zone?: string;
  host?: string;
  status?: 'available' | 'assigned';
  assignedTo?: string;
}

/** Every query and write the services need. The same methods run inside and outside a transaction. */
export interface Repository {
  // accounts
  getAccount(id: string): Promise<AccountRow | undefined>;
  getAccountByRealm(realm: string): Promise<AccountRow | undefined>;
  getAccountByApiKeyHash(hash: string): Promise<AccountRow | undefined>;
  /** The superduper master: the first account created, at the top of the hierarchy. */
  getMasterAccount(): Promise<AccountRow | undefined>;
  findAccountsByNameKey(nameKey: string): Promise<AccountRow[]>;
  listAccounts(): Promise<AccountRow[]>;
  listChildren(id: string): Promise<AccountRow[]>;
  listDescendants(path: string): Promise<AccountRow[]>;
  countAccounts(): Promise<number>;
  insertAccount(row: AccountRow): Promise<void>;
  updateAccount(row: AccountRow): Promise<void>;
  deleteAccount(id: string): Promise<void>;
  setApiKey(id: string, hash: string, sealed: string): Promise<void>;

  // users
  getUser(id: string): Promise<UserRow | undefined>;
  getUserByUsername(accountId: string, username: string): Promise<UserRow | undefined>;
  listUsers(accountId: string): Promise<UserRow[]>;
  listUsersByLoginTag(tag: string): Promise<UserRow[]>;
  setLoginTag(userId: string, tag: string): Promise<void>;
  insertUser(row: UserRow): Promise<void>;
  updateUser(row: UserRow): Promise<void>;
  deleteUser(id: string): Promise<void>;

  // tokens
  getToken(hash: string): Promise<TokenRow | undefined>;
  insertToken(row: TokenRow): Promise<void>;
  deleteToken(hash: string): Promise<void>;
  /** Every token an account's API key opened (a rotated key's sessions end with it). */
  deleteApiKeyTokens(accountId: string): Promise<void>;
  deleteExpiredTokens(now: string): Promise<void>;

  // devices
  getDevice(id: string): Promise<DeviceRow | undefined>;
  getDeviceBySipUsername(accountId: string, sipUsername: string): Promise<DeviceRow | undefined>;
  listDevices(accountId: string): Promise<DeviceRow[]>;
  listAllDevices(): Promise<DeviceRow[]>;
  insertDevice(row: DeviceRow): Promise<void>;
  updateDevice(row: DeviceRow): Promise<void>;
  deleteDevice(id: string): Promise<void>;

  // dedicated IPs
  getIp(ip: string): Promise<IpRow | undefined>;
  listIps(filter: IpFilter): Promise<IpRow[]>;
  insertIp(row: IpRow): Promise<void>;
  updateIp(row: IpRow): Promise<void>;
  deleteIp(ip: string): Promise<void>;
  /** Assigns only if still available: false when another transaction took it first. */
  assignIpIfAvailable(ip: string, accountId: string, revision: string, modified: string): Promise<boolean>;
  /** Releases only if assigned to `accountId`. */
  releaseIpIfAssigned(ip: string, accountId: string, revision: string, modified: string): Promise<boolean>;

  // trunks and IP ACL entries
  getTrunk(id: string): Promise<TrunkRow | undefined>;
  listTrunks(accountId: string): Promise<TrunkRow[]>;
  insertTrunk(row: TrunkRow): Promise<void>;
  updateTrunk(row: TrunkRow): Promise<void>;
  deleteTrunk(id: string): Promise<void>;
  getIpAcl(id: string): Promise<IpAclRow | undefined>;
  listIpAcls(filter: { accountId?: string; trunkId?: string }): Promise<IpAclRow[]>;
  countIpAcls(trunkId: string): Promise<number>;
  /**
   * Enabled entries of enabled trunks whose range overlaps [lo, hi] of one family. Stored ranges
   * are CIDR blocks, so this is a handful of indexed lookups, whatever the table's size.
   */
  findActiveOverlaps(family: 4 | 6, lo: string, hi: string): Promise<ActiveIpAcl[]>;
  /** The same for many ranges at once (a bulk load): every active entry overlapping any of them. */
  findActiveOverlapsAny(family: 4 | 6, ranges: readonly { lo: string; hi: string }[]): Promise<ActiveIpAcl[]>;
  /** Enabled entries of enabled trunks whose block starts at one of `starts` (fixed-width hex) of one family. */
  listActiveIpAclsStartingAt(family: 4 | 6, starts: readonly string[]): Promise<IndexIpAclRow[]>;
  listActiveIpAcls(): Promise<IpAclRow[]>;
  /** The same, only what the decision index keeps of each (a full build of a million entries reads no more). */
  listActiveIndexIpAcls(): Promise<IndexIpAclRow[]>;
  insertIpAcl(row: IpAclRow): Promise<void>;
  /** Many rows in a few statements (a bulk import). */
  insertIpAcls(rows: readonly IpAclRow[]): Promise<void>;
  updateIpAcl(row: IpAclRow): Promise<void>;
  deleteIpAcl(id: string): Promise<void>;

  // audit
  insertAudit(row: Omit<AuditRow, 'seq'>): Promise<void>;
  insertAudits(rows: readonly Omit<AuditRow, 'seq'>[]): Promise<void>;
  listAudit(accountId: string, options: { resource?: string; limit: number; beforeSeq?: number }): Promise<AuditRow[]>;

  // login attempts (brute-force throttle)
  /** Times of the key's attempts at or after `since` (from `source` only, when given), oldest first. */
  listLoginAttempts(key: string, since: string, source?: string): Promise<string[]>;
  insertLoginAttempt(attempt: string, key: string, source: string, at: string): Promise<void>;
  /** Forgets one attempt (it succeeded: not a failure). */
  deleteLoginAttempt(attempt: string): Promise<void>;
  /** Forgets the key's attempts from `source` (a success resets the pair's count). */
  deleteLoginAttempts(key: string, source: string): Promise<void>;
  /** Forgets every attempt before `before` (they no longer count). */
  pruneLoginAttempts(before: string): Promise<void>;

  // facts about the deployment
  getDeploymentValue(name: string): Promise<string | undefined>;
  insertDeploymentValue(name: string, value: string): Promise<void>;

  // change feed
  recordChange(kind: ChangeKind, accountId: string | null, at: string, subject?: string): Promise<void>;
  /** One change per subject, in order. */
  recordChanges(kind: ChangeKind, accountId: string | null, at: string, subjects: readonly string[]): Promise<void>;
  /** Changes after `id`, oldest first; at most `limit` of them when given. */
  changesSince(id: number, limit?: number): Promise<ChangeRow[]>;
  lastChangeId(): Promise<number>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Reads of committed data, outside any transaction. */
  readonly read: Repository;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * Transactions that write are serialised, so check-then-write inside one is race-free.
   */
  transaction<T>(fn: (tx: Repository) => Promise<T>): Promise<T>;
  /**
   * Optional (every store but an in-memory SQLite one): runs `task` — the function `name`
   * exported by the module at URL `module`, called as (tx, input) — in one transaction on a
   * connection of its own in a worker thread, so that its statements, rows and COMMIT never hold
   * the event loop (a bulk load's). It takes its turn with every other transaction (SQLite: in
   * the store's queue; PostgreSQL: behind the writer lock). `input` and the result cross threads as structured clones; an error
   * thrown comes back as an Error with the thrown one's name, message and own fields. With
   * `rollback`, the transaction is rolled back once the task has returned.
   */
  transactionAside?<I, O>(task: { readonly module: string; readonly name: string }, input: I, options?: { rollback?: boolean }): Promise<O>;
  /** Resolves when the database answers; rejects when it cannot be reached. */
  ping(): Promise<void>;
  /**
   * Optional (PostgreSQL): calls `listener` when another node may have committed a change, and
   * whenever the notification channel is lost or regained. The listener replays the change feed.
   */
  onChange?(listener: () => void): void;
  /**
   * Optional (SQLite): leaves nothing overwritten or deleted readable in the database's files, as
   * after secrets stored in the clear have been sealed.
   */
  purge?(): Promise<void>;
  close(): Promise<void>;
}

/** The database cannot be reached (api.md §1: 503 `datastore fatal error`). */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super('the database cannot be reached', { cause });
    this.name = 'StoreUnavailableError';
  }
}

/** A unique constraint refused a write. */
export class UniqueViolationError extends Error {
  constructor(cause: unknown) {
    super('unique constraint violated', { cause });
    this.name = 'UniqueViolationError';
  }
}
