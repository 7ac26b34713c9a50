// The Repository written once in portable SQL (`?` placeholders), over a minimal executor that
// each adapter provides. Rows are mapped between snake_case columns and the port's types here.

import type {
  AccountRow,
  ActiveIpAcl,
  IndexIpAclRow,
  AuditRow,
  ChangeKind,
  ChangeRow,
  DeviceRow,
  IpAclRow,
  IpFilter,
  IpRow,
  Repository,
  TokenRow,
  TrunkRow,
  UserRow,
} from './port.ts';

type Param = string | number | null | readonly string[];
type Raw = Record<string, unknown>;

export interface SqlExecutor {
  all(sql: string, params?: Param[]): Promise<Raw[]>;
  run(sql: string, params?: Param[]): Promise<number>;
  /** Serialises the writers of the change feed and audit trail so their sequence follows commit order. */
  lockChangeFeed(): Promise<void>;
  /**
   * True when one array parameter can stand for a list (PostgreSQL's `= ANY(?)`): planned once
   * whatever the list's length, where an `IN (?, ?, …)` of a hundred values was planned anew
   * on every call.
   */
  readonly arrays: boolean;
}

const str = (v: unknown): string => String(v);
const nullable = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const bool = (v: unknown): boolean => v === 1 || v === true || v === '1';
const json = <T>(v: unknown): T => JSON.parse(String(v)) as T;
const jsonOrNull = <T>(v: unknown): T | null => (v === null || v === undefined ? null : json<T>(v));
const int = (b: boolean): number => (b ? 1 : 0);

function toAccount(r: Raw): AccountRow {
  return {
    id: str(r.id),
    name: str(r.name),
    nameKey: str(r.name_key),
    realm: str(r.realm),
    parentId: nullable(r.parent_id),
    path: str(r.path),
    superduper: bool(r.superduper),
    apiKeyHash: str(r.api_key_hash),
    apiKeySealed: nullable(r.api_key_sealed),
    accessList: jsonOrNull(r.access_list),
    extra: json(r.extra),
    revision: str(r.revision),
    created: str(r.created),
    modified: str(r.modified),
  };
}

function toUser(r: Raw): UserRow {
  return {
    id: str(r.id),
    accountId: str(r.account_id),
    username: str(r.username),
    passwordHash: str(r.password_hash),
    loginTag: nullable(r.login_tag),
    privLevel: r.priv_level === 'admin' ? 'admin' : 'user',
    extra: json(r.extra),
    revision: str(r.revision),
    created: str(r.created),
    modified: str(r.modified),
  };
}

function toToken(r: Raw): TokenRow {
  return {
    hash: str(r.hash),
    accountId: str(r.account_id),
    ownerId: nullable(r.owner_id),
    method: str(r.method),
    expiresAt: str(r.expires_at),
    created: str(r.created),
  };
}

function toDevice(r: Raw): DeviceRow {
  return {
    id: str(r.id),
    accountId: str(r.account_id),
    name: str(r.name),
    sipUsername: str(r.sip_username),
    enabled: bool(r.enabled),
    accessList: jsonOrNull(r.access_list),
    extra: json(r.extra),
    revision: str(r.revision),
    created: str(r.created),
    modified: str(r.modified),
  };
}

function toIp(r: Raw): IpRow {
  return {
    ip: str(r.ip),
    zone: str(r.zone),
    host: str(r.host),
    assignedTo: nullable(r.assigned_to),
    revision: str(r.revision),
    created: str(r.created),
    modified: str(r.modified),
  };
}

function toTrunk(r: Raw): TrunkRow {
  return {
    id: str(r.id),
    accountId: str(r.account_id),
    name: str(r.name),
    enabled: bool(r.enabled),
    revision: str(r.revision),
    created: str(r.created),
    modified: str(r.modified),
  };
}

function toIpAcl(r: Raw): IpAclRow {
  return {
    id: str(r.id),
    trunkId: str(r.trunk_id),
    accountId: str(r.account_id),
    ipAddress: str(r.ip_address),
    family: Number(r.family) === 6 ? 6 : 4,
    rangeLo: str(r.range_lo),
    rangeHi: str(r.range_hi),
    prefix: Number(r.prefix),
    description: str(r.description),
    enabled: bool(r.enabled),
    revision: str(r.revision),
    createdAt: str(r.created_at),
    updatedAt: str(r.updated_at),
  };
}

function toIndexIpAcl(r: Raw): IndexIpAclRow {
  return { id: str(r.id), trunkId: str(r.trunk_id), accountId: str(r.account_id), ipAddress: str(r.ip_address), family: Number(r.family) === 6 ? 6 : 4, rangeLo: str(r.range_lo), prefix: Number(r.prefix) };
}

function toActiveIpAcl(r: Raw): ActiveIpAcl {
  return { ...toIpAcl(r), trunkEnabled: bool(r.trunk_enabled) };
}

function toAudit(r: Raw): AuditRow {
  return {
    id: str(r.id),
    seq: Number(r.seq),
    timestamp: str(r.timestamp),
    accountId: str(r.account_id),
    actor: json(r.actor),
    action: str(r.action) as AuditRow['action'],
    resource: str(r.resource),
    resourceId: str(r.resource_id),
    before: jsonOrNull(r.before_doc),
    after: jsonOrNull(r.after_doc),
  };
}

const jsonText = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

const STARTS_PER_QUERY = 128;
/**
 * An entry's trunk is enabled, asked per entry found rather than joined: the probes then read
 * ip_acls by its range index whatever the planner's statistics say (PostgreSQL, its tables
 * never analysed after a bulk load, chose to walk every trunk's entries instead: 0.7 s a probe).
 */
/** Every enabled entry of an enabled trunk, in id order (a full build's order). */
const ACTIVE_IP_ACLS = 'FROM ip_acls a JOIN trunks t ON t.id = a.trunk_id WHERE a.enabled = 1 AND t.enabled = 1 ORDER BY a.id';
const TRUNK_ENABLED = '(SELECT t.enabled FROM trunks t WHERE t.id = a.trunk_id) = 1';
/** Parameters of one multi-row INSERT (SQLite allows 32,766, PostgreSQL 65,535). */
const ROW_PARAMETERS = 900;

/** Multi-row INSERT texts by head, width and row count: made once, not on every bulk's every chunk. */
const insertTexts = new Map<string, string>();
function insertText(insert: string, width: number, count: number): string {
  const key = `${count}:${insert}`;
  let text = insertTexts.get(key);
  if (text === undefined) {
    const tuple = `(${Array.from({ length: width }, () => '?').join(', ')})`;
    text = `${insert} ${Array.from({ length: count }, () => tuple).join(', ')}`;
    insertTexts.set(key, text);
  }
  return text;
}

/** The first index of sorted `values` not below `key`. */
function lowerBound(values: readonly string[], key: string): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index of sorted `values` above `key`. */
function upperBound(values: readonly string[], key: string): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The network address (fixed-width hex) of every block of `family` holding the address `lo`, once each. */
function enclosingStarts(family: 4 | 6, lo: string): string[] {
  const starts: string[] = [];
  if (family === 4) {
    const address = Number.parseInt(lo, 16);
    for (let prefix = 0; prefix <= 32; prefix++) {
      const start = prefix === 0 ? 0 : (address & (0xffffffff << (32 - prefix))) >>> 0;
      const text = start.toString(16).padStart(8, '0');
      if (text !== starts[starts.length - 1]) starts.push(text);
    }
    return starts;
  }
  const address = BigInt(`0x${lo}`);
  for (let prefix = 0; prefix <= 128; prefix++) {
    const host = (1n << BigInt(128 - prefix)) - 1n;
    const text = (address & ~host).toString(16).padStart(32, '0');
    if (text !== starts[starts.length - 1]) starts.push(text);
  }
  return starts;
}

/** Ranges closer than this many addresses are probed as one span (its gaps' blocks cost a row each, a second span ~33 seeks). */
const SPAN_GAP = 64n;

/** `sorted` (by lo) merged into spans: ranges that overlap, touch or lie within SPAN_GAP of one another. */
function spansOf(family: 4 | 6, sorted: readonly { lo: string; hi: string }[]): { lo: string; hi: string }[] {
  const width = family === 4 ? 8 : 32;
  const spans: { lo: string; hi: string }[] = [];
  let lo = sorted[0]!.lo;
  let hi = BigInt(`0x${sorted[0]!.hi}`);
  for (const range of sorted.slice(1)) {
    const next = BigInt(`0x${range.hi}`);
    if (BigInt(`0x${range.lo}`) <= hi + SPAN_GAP) {
      if (next > hi) hi = next;
      continue;
    }
    spans.push({ lo, hi: hi.toString(16).padStart(width, '0') });
    lo = range.lo;
    hi = next;
  }
  spans.push({ lo, hi: hi.toString(16).padStart(width, '0') });
  return spans;
}

/** A test of whether a block overlaps any of `sorted` (by lo): the furthest hi reached by each prefix of them. */
function reachOf(sorted: readonly { lo: string; hi: string }[]): (block: { rangeLo: string; rangeHi: string }) => boolean {
  const los = sorted.map((r) => r.lo);
  const reach: string[] = [];
  for (const [i, r] of sorted.entries()) reach.push(i > 0 && reach[i - 1]! > r.hi ? reach[i - 1]! : r.hi);
  return (block) => {
    // The last range starting at or before the block's end, and the furthest any of those reach.
    const last = upperBound(los, block.rangeHi) - 1;
    return last >= 0 && reach[last]! >= block.rangeLo;
  };
}

export class SqlRepository implements Repository {
  constructor(private readonly db: SqlExecutor) {}

  private async one<T>(sql: string, params: Param[], map: (r: Raw) => T): Promise<T | undefined> {
    const rows = await this.db.all(sql, params);
    return rows.length > 0 ? map(rows[0]!) : undefined;
  }

  private async many<T>(sql: string, params: Param[], map: (r: Raw) => T): Promise<T[]> {
    return (await this.db.all(sql, params)).map(map);
  }

  /** `IN (…)` of `values` as the executor takes a list best. */
  private listOf(values: readonly string[]): { sql: string; params: Param[] } {
    if (this.db.arrays) return { sql: '= ANY(?)', params: [values] };
    return { sql: `IN (${values.map(() => '?').join(', ')})`, params: [...values] };
  }

  /** `insert` (ending in VALUES) for every row, a few hundred parameters a statement. */
  private async insertMany(insert: string, rows: readonly Param[][]): Promise<void> {
    if (rows.length === 0) return;
    const width = rows[0]!.length;
    const per = Math.max(1, Math.floor(ROW_PARAMETERS / width));
    for (let i = 0; i < rows.length; i += per) {
      const end = Math.min(rows.length, i + per);
      const params: Param[] = [];
      for (let r = i; r < end; r++) for (const value of rows[r]!) params.push(value);
      await this.db.run(insertText(insert, width, end - i), params);
    }
  }

  private async count(sql: string, params: Param[]): Promise<number> {
    const rows = await this.db.all(sql, params);
    return Number(rows[0]?.n ?? 0);
  }

  // accounts
  getAccount(id: string) {
    return this.one('SELECT * FROM accounts WHERE id = ?', [id], toAccount);
  }
  getAccountByRealm(realm: string) {
    return this.one('SELECT * FROM accounts WHERE realm = ?', [realm], toAccount);
  }
  getAccountByApiKeyHash(hash: string) {
    return this.one('SELECT * FROM accounts WHERE api_key_hash = ?', [hash], toAccount);
  }
  getMasterAccount() {
    return this.one('SELECT * FROM accounts WHERE parent_id IS NULL AND superduper = 1 ORDER BY created, id LIMIT 1', [], toAccount);
  }
  findAccountsByNameKey(nameKey: string) {
    return this.many('SELECT * FROM accounts WHERE name_key = ? ORDER BY id', [nameKey], toAccount);
  }
  listAccounts() {
    return this.many('SELECT * FROM accounts ORDER BY path', [], toAccount);
  }
  listChildren(id: string) {
    return this.many('SELECT * FROM accounts WHERE parent_id = ? ORDER BY id', [id], toAccount);
  }
  listDescendants(path: string) {
    return this.many('SELECT * FROM accounts WHERE path LIKE ? AND path <> ? ORDER BY path', [`${path}%`, path], toAccount);
  }
  countAccounts() {
    return this.count('SELECT COUNT(*) AS n FROM accounts', []);
  }
  async insertAccount(a: AccountRow) {
    await this.db.run(
      `INSERT INTO accounts (id, name, name_key, realm, parent_id, path, superduper, api_key_hash, api_key_sealed, access_list, extra, revision, created, modified)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [a.id, a.name, a.nameKey, a.realm, a.parentId, a.path, int(a.superduper), a.apiKeyHash, a.apiKeySealed, jsonText(a.accessList), JSON.stringify(a.extra), a.revision, a.created, a.modified],
    );
  }
  async updateAccount(a: AccountRow) {
    await this.db.run(
      `UPDATE accounts SET name = ?, name_key = ?, realm = ?, access_list = ?, extra = ?, revision = ?, modified = ? WHERE id = ?`,
      [a.name, a.nameKey, a.realm, jsonText(a.accessList), JSON.stringify(a.extra), a.revision, a.modified, a.id],
    );
  }
  async deleteAccount(id: string) {
    await this.db.run('DELETE FROM accounts WHERE id = ?', [id]);
  }
  async setApiKey(id: string, hash: string, sealed: string) {
    await this.db.run('UPDATE accounts SET api_key_hash = ?, api_key_sealed = ? WHERE id = ?', [hash, sealed, id]);
  }

  // users
  getUser(id: string) {
    return this.one('SELECT * FROM users WHERE id = ?', [id], toUser);
  }
  getUserByUsername(accountId: string, username: string) {
    return this.one('SELECT * FROM users WHERE account_id = ? AND username = ?', [accountId, username], toUser);
  }
  listUsers(accountId: string) {
    return this.many('SELECT * FROM users WHERE account_id = ? ORDER BY id', [accountId], toUser);
  }
  listUsersByLoginTag(tag: string) {
    return this.many('SELECT * FROM users WHERE login_tag = ? ORDER BY id', [tag], toUser);
  }
  async setLoginTag(userId: string, tag: string) {
    await this.db.run('UPDATE users SET login_tag = ? WHERE id = ?', [tag, userId]);
  }
  async insertUser(u: UserRow) {
    await this.db.run(
      `INSERT INTO users (id, account_id, username, password_hash, login_tag, priv_level, extra, revision, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [u.id, u.accountId, u.username, u.passwordHash, u.loginTag, u.privLevel, JSON.stringify(u.extra), u.revision, u.created, u.modified],
    );
  }
  async updateUser(u: UserRow) {
    await this.db.run(
      `UPDATE users SET username = ?, password_hash = ?, login_tag = ?, priv_level = ?, extra = ?, revision = ?, modified = ? WHERE id = ?`,
      [u.username, u.passwordHash, u.loginTag, u.privLevel, JSON.stringify(u.extra), u.revision, u.modified, u.id],
    );
  }
  async deleteUser(id: string) {
    await this.db.run('DELETE FROM users WHERE id = ?', [id]);
  }

  // tokens
  getToken(hash: string) {
    return this.one('SELECT * FROM tokens WHERE hash = ?', [hash], toToken);
  }
  async insertToken(t: TokenRow) {
    await this.db.run('INSERT INTO tokens (hash, account_id, owner_id, method, expires_at, created) VALUES (?, ?, ?, ?, ?, ?)', [
      t.hash,
      t.accountId,
      t.ownerId,
      t.method,
      t.expiresAt,
      t.created,
    ]);
  }
  async deleteToken(hash: string) {
    await this.db.run('DELETE FROM tokens WHERE hash = ?', [hash]);
  }
  async deleteApiKeyTokens(accountId: string) {
    await this.db.run('DELETE FROM tokens WHERE account_id = ? AND owner_id IS NULL', [accountId]);
  }
  async deleteExpiredTokens(now: string) {
    await this.db.run('DELETE FROM tokens WHERE expires_at < ?', [now]);
  }

  // devices
  getDevice(id: string) {
    return this.one('SELECT * FROM devices WHERE id = ?', [id], toDevice);
  }
  getDeviceBySipUsername(accountId: string, sipUsername: string) {
    return this.one('SELECT * FROM devices WHERE account_id = ? AND sip_username = ?', [accountId, sipUsername], toDevice);
  }
  listDevices(accountId: string) {
    return this.many('SELECT * FROM devices WHERE account_id = ? ORDER BY id', [accountId], toDevice);
  }
  listAllDevices() {
    return this.many('SELECT * FROM devices ORDER BY account_id, id', [], toDevice);
  }
  async insertDevice(d: DeviceRow) {
    await this.db.run(
      `INSERT INTO devices (id, account_id, name, sip_username, enabled, access_list, extra, revision, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [d.id, d.accountId, d.name, d.sipUsername, int(d.enabled), jsonText(d.accessList), JSON.stringify(d.extra), d.revision, d.created, d.modified],
    );
  }
  async updateDevice(d: DeviceRow) {
    await this.db.run(
      `UPDATE devices SET name = ?, sip_username = ?, enabled = ?, access_list = ?, extra = ?, revision = ?, modified = ? WHERE id = ?`,
      [d.name, d.sipUsername, int(d.enabled), jsonText(d.accessList), JSON.stringify(d.extra), d.revision, d.modified, d.id],
    );
  }
  async deleteDevice(id: string) {
    await this.db.run('DELETE FROM devices WHERE id = ?', [id]);
  }

  // dedicated IPs
  getIp(ip: string) {
    return this.one('SELECT * FROM ips WHERE ip = ?', [ip], toIp);
  }
  listIps(filter: IpFilter) {
    const where: string[] = [];
    const params: Param[] = [];
    if (filter.zone !== undefined) (where.push('zone = ?'), params.push(filter.zone));
    if (filter.host !== undefined) (where.push('host = ?'), params.push(filter.host));
    if (filter.status === 'available') where.push('assigned_to IS NULL');
    if (filter.status === 'assigned') where.push('assigned_to IS NOT NULL');
    if (filter.assignedTo !== undefined) (where.push('assigned_to = ?'), params.push(filter.assignedTo));
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    return this.many(`SELECT * FROM ips ${clause} ORDER BY ip`, params, toIp);
  }
  async insertIp(r: IpRow) {
    await this.db.run('INSERT INTO ips (ip, zone, host, assigned_to, revision, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      r.ip,
      r.zone,
      r.host,
      r.assignedTo,
      r.revision,
      r.created,
      r.modified,
    ]);
  }
  async updateIp(r: IpRow) {
    await this.db.run('UPDATE ips SET zone = ?, host = ?, assigned_to = ?, revision = ?, modified = ? WHERE ip = ?', [
      r.zone,
      r.host,
      r.assignedTo,
      r.revision,
      r.modified,
      r.ip,
    ]);
  }
  async deleteIp(ip: string) {
    await this.db.run('DELETE FROM ips WHERE ip = ?', [ip]);
  }
  async assignIpIfAvailable(ip: string, accountId: string, revision: string, modified: string) {
    const changed = await this.db.run('UPDATE ips SET assigned_to = ?, revision = ?, modified = ? WHERE ip = ? AND assigned_to IS NULL', [
      accountId,
      revision,
      modified,
      ip,
    ]);
    return changed === 1;
  }
  async releaseIpIfAssigned(ip: string, accountId: string, revision: string, modified: string) {
    const changed = await this.db.run('UPDATE ips SET assigned_to = NULL, revision = ?, modified = ? WHERE ip = ? AND assigned_to = ?', [
      revision,
      modified,
      ip,
      accountId,
    ]);
    return changed === 1;
  }

  // trunks and IP ACL entries
  getTrunk(id: string) {
    return this.one('SELECT * FROM trunks WHERE id = ?', [id], toTrunk);
  }
  listTrunks(accountId: string) {
    return this.many('SELECT * FROM trunks WHERE account_id = ? ORDER BY created, id', [accountId], toTrunk);
  }
  async insertTrunk(t: TrunkRow) {
    await this.db.run('INSERT INTO trunks (id, account_id, name, enabled, revision, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      t.id,
      t.accountId,
      t.name,
      int(t.enabled),
      t.revision,
      t.created,
      t.modified,
    ]);
  }
  async updateTrunk(t: TrunkRow) {
    await this.db.run('UPDATE trunks SET name = ?, enabled = ?, revision = ?, modified = ? WHERE id = ?', [t.name, int(t.enabled), t.revision, t.modified, t.id]);
  }
  async deleteTrunk(id: string) {
    await this.db.run('DELETE FROM ip_acls WHERE trunk_id = ?', [id]);
    await this.db.run('DELETE FROM trunks WHERE id = ?', [id]);
  }
  getIpAcl(id: string) {
    return this.one('SELECT * FROM ip_acls WHERE id = ?', [id], toIpAcl);
  }
  listIpAcls(filter: { accountId?: string; trunkId?: string }) {
    const where: string[] = [];
    const params: Param[] = [];
    if (filter.accountId !== undefined) (where.push('account_id = ?'), params.push(filter.accountId));
    if (filter.trunkId !== undefined) (where.push('trunk_id = ?'), params.push(filter.trunkId));
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    return this.many(`SELECT * FROM ip_acls ${clause} ORDER BY created_at, id`, params, toIpAcl);
  }
  countIpAcls(trunkId: string) {
    return this.count('SELECT COUNT(*) AS n FROM ip_acls WHERE trunk_id = ?', [trunkId]);
  }
  findActiveOverlaps(family: 4 | 6, lo: string, hi: string): Promise<ActiveIpAcl[]> {
    return this.findActiveOverlapsAny(family, [{ lo, hi }]);
  }
  // A stored block overlaps a span [lo, hi] when it holds lo, or starts inside (lo, hi]. The
  // blocks that could hold lo start at lo's network address for some prefix length: indexed
  // probes (33 for IPv4, 129 for IPv6), not a scan of every block starting below hi; and those
  // starting inside are one index range. Ranges lying close together are probed as one span, so
  // a bulk load of neighbouring addresses costs a few queries, not a few per entry; a block found
  // in a span's gaps is dropped unless it overlaps one of the ranges themselves.
  async findActiveOverlapsAny(family: 4 | 6, ranges: readonly { lo: string; hi: string }[]): Promise<ActiveIpAcl[]> {
    if (ranges.length === 0) return [];
    const sorted = [...ranges].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
    const spans = spansOf(family, sorted);
    const found = new Map<string, ActiveIpAcl>();
    const perQuery = Math.max(1, Math.floor(STARTS_PER_QUERY / (family === 4 ? 33 : 129)));
    for (let i = 0; i < spans.length; i += perQuery) {
      const group = spans.slice(i, i + perQuery);
      const los = group.map((span) => span.lo);
      const starts = this.listOf([...new Set(los.flatMap((lo) => enclosingStarts(family, lo)))]);
      const holders = await this.db.all(
        `SELECT a.*, 1 AS trunk_enabled FROM ip_acls a
         WHERE a.family = ? AND a.range_lo ${starts.sql} AND a.range_hi >= ? AND a.enabled = 1 AND ${TRUNK_ENABLED}`,
        [family, ...starts.params, los[0]!],
      );
      for (const raw of holders) {
        const row = toActiveIpAcl(raw);
        const first = lowerBound(los, row.rangeLo);
        if (first < los.length && los[first]! <= row.rangeHi) found.set(row.id, row);
      }
    }
    const overlapsSome = reachOf(sorted);
    for (const { lo, hi } of spans) {
      if (lo === hi) continue;
      const inside = await this.db.all(
        `SELECT a.*, 1 AS trunk_enabled FROM ip_acls a
         WHERE a.family = ? AND a.range_lo > ? AND a.range_lo <= ? AND a.enabled = 1 AND ${TRUNK_ENABLED}`,
        [family, lo, hi],
      );
      for (const raw of inside) {
        const row = toActiveIpAcl(raw);
        if (overlapsSome(row)) found.set(row.id, row);
      }
    }
    return [...found.values()];
  }
  async listActiveIpAclsStartingAt(family: 4 | 6, starts: readonly string[]): Promise<IndexIpAclRow[]> {
    const rows: IndexIpAclRow[] = [];
    for (let i = 0; i < starts.length; i += STARTS_PER_QUERY) {
      const chunk = this.listOf(starts.slice(i, i + STARTS_PER_QUERY));
      const found = await this.db.all(
        `SELECT a.id, a.trunk_id, a.account_id, a.ip_address, a.family, a.range_lo, a.prefix FROM ip_acls a
         WHERE a.family = ? AND a.range_lo ${chunk.sql} AND a.enabled = 1 AND ${TRUNK_ENABLED}`,
        [family, ...chunk.params],
      );
      for (const row of found) rows.push(toIndexIpAcl(row));
    }
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
  listActiveIndexIpAcls() {
    return this.many(
      `SELECT a.id, a.trunk_id, a.account_id, a.ip_address, a.family, a.range_lo, a.prefix ${ACTIVE_IP_ACLS}`,
      [],
      toIndexIpAcl,
    );
  }
  listActiveIpAcls() {
    return this.many(
      `SELECT a.* ${ACTIVE_IP_ACLS}`,
      [],
      toIpAcl,
    );
  }
  insertIpAcl(r: IpAclRow) {
    return this.insertIpAcls([r]);
  }
  async insertIpAcls(rows: readonly IpAclRow[]) {
    await this.insertMany(
      'INSERT INTO ip_acls (id, trunk_id, account_id, ip_address, family, range_lo, range_hi, prefix, description, enabled, revision, created_at, updated_at) VALUES',
      rows.map((r) => [r.id, r.trunkId, r.accountId, r.ipAddress, r.family, r.rangeLo, r.rangeHi, r.prefix, r.description, int(r.enabled), r.revision, r.createdAt, r.updatedAt]),
    );
  }
  async updateIpAcl(r: IpAclRow) {
    await this.db.run(
      `UPDATE ip_acls SET ip_address = ?, family = ?, range_lo = ?, range_hi = ?, prefix = ?, description = ?, enabled = ?, revision = ?, updated_at = ? WHERE id = ?`,
      [r.ipAddress, r.family, r.rangeLo, r.rangeHi, r.prefix, r.description, int(r.enabled), r.revision, r.updatedAt, r.id],
    );
  }
  async deleteIpAcl(id: string) {
    await this.db.run('DELETE FROM ip_acls WHERE id = ?', [id]);
  }

  // audit
  insertAudit(a: Omit<AuditRow, 'seq'>) {
    return this.insertAudits([a]);
  }
  async insertAudits(rows: readonly Omit<AuditRow, 'seq'>[]) {
    await this.db.lockChangeFeed();
    // The lock serialises every writer of the sequence, so reading its end first is race-free.
    const last = await this.count('SELECT COALESCE(MAX(seq), 0) AS n FROM audit', []);
    await this.insertMany(
      'INSERT INTO audit (id, seq, timestamp, account_id, actor, action, resource, resource_id, before_doc, after_doc) VALUES',
      rows.map((a, i) => [a.id, last + i + 1, a.timestamp, a.accountId, JSON.stringify(a.actor), a.action, a.resource, a.resourceId, jsonText(a.before), jsonText(a.after)]),
    );
  }
  listAudit(accountId: string, options: { resource?: string; limit: number; beforeSeq?: number }) {
    const params: Param[] = [accountId];
    let sql = 'SELECT * FROM audit WHERE account_id = ?';
    if (options.resource !== undefined) (sql += ' AND resource = ?'), params.push(options.resource);
    if (options.beforeSeq !== undefined) (sql += ' AND seq < ?'), params.push(options.beforeSeq);
    sql += ' ORDER BY seq DESC LIMIT ?';
    params.push(options.limit);
    return this.many(sql, params, toAudit);
  }

  // login attempts
  async listLoginAttempts(key: string, since: string, source?: string) {
    const rows =
      source === undefined
        ? await this.db.all('SELECT at FROM login_attempts WHERE key = ? AND at >= ? ORDER BY at', [key, since])
        : await this.db.all('SELECT at FROM login_attempts WHERE key = ? AND at >= ? AND source = ? ORDER BY at', [key, since, source]);
    return rows.map((r) => str(r.at));
  }
  async insertLoginAttempt(attempt: string, key: string, source: string, at: string) {
    await this.db.run('INSERT INTO login_attempts (attempt, key, source, at) VALUES (?, ?, ?, ?)', [attempt, key, source, at]);
  }
  async deleteLoginAttempt(attempt: string) {
    await this.db.run('DELETE FROM login_attempts WHERE attempt = ?', [attempt]);
  }
  async deleteLoginAttempts(key: string, source: string) {
    await this.db.run('DELETE FROM login_attempts WHERE key = ? AND source = ?', [key, source]);
  }
  async pruneLoginAttempts(before: string) {
    await this.db.run('DELETE FROM login_attempts WHERE at < ?', [before]);
  }

  // facts about the deployment
  async getDeploymentValue(name: string) {
    const rows = await this.db.all('SELECT value FROM deployment WHERE name = ?', [name]);
    return rows.length > 0 ? str(rows[0]!.value) : undefined;
  }
  async insertDeploymentValue(name: string, value: string) {
    await this.db.run('INSERT INTO deployment (name, value) VALUES (?, ?)', [name, value]);
  }

  // change feed
  async recordChange(kind: ChangeKind, accountId: string | null, at: string, subject?: string) {
    await this.db.lockChangeFeed();
    await this.db.run('INSERT INTO changes (id, account_id, kind, at, subject) VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM changes), ?, ?, ?, ?)', [
      accountId,
      kind,
      at,
      subject ?? null,
    ]);
  }
  async recordChanges(kind: ChangeKind, accountId: string | null, at: string, subjects: readonly string[]) {
    await this.db.lockChangeFeed();
    const last = await this.lastChangeId();
    await this.insertMany(
      'INSERT INTO changes (id, account_id, kind, at, subject) VALUES',
      subjects.map((subject, i) => [last + i + 1, accountId, kind, at, subject]),
    );
  }
  changesSince(id: number, limit = -1): Promise<ChangeRow[]> {
    const sql = limit < 0 ? 'SELECT * FROM changes WHERE id > ? ORDER BY id' : 'SELECT * FROM changes WHERE id > ? ORDER BY id LIMIT ?';
    return this.many(sql, limit < 0 ? [id] : [id, limit], (r) => ({
      id: Number(r.id),
      accountId: nullable(r.account_id),
      kind: str(r.kind) as ChangeKind,
      at: str(r.at),
      subject: nullable(r.subject),
    }));
  }
  async lastChangeId() {
    return this.count('SELECT COALESCE(MAX(id), 0) AS n FROM changes', []);
  }
}
