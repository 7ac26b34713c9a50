// Authentication (api.md §2): `user_auth` with KAZOO's md5 credentials, `api_auth` with the
// account's API key, and tokens. A token is JWT-shaped because Monster UI decodes its payload at
// login, but it is only ever trusted by looking up its hash; the payload is for the client.

import { createHash, randomBytes } from 'node:crypto';
import type { AccountRow, Repository, Store, TokenRow, UserRow } from '../store/port.ts';
import { StoreUnavailableError } from '../store/port.ts';
import type { Actor } from './actor.ts';
import type { ServiceContext } from './context.ts';
import { Failure } from './errors.ts';
import { DUMMY_HASH, verifyCredentials } from './passwords.ts';
import { nameKeyOf } from './accounts.ts';
import { recordAudit } from './audit.ts';
import { apiKeyHashOf } from './secrets.ts';
import { ApiAuthSchema, check, UserAuthSchema } from './schemas.ts';

export interface AuthSettings {
  tokenTtlSeconds: number;
  /** Failed attempts for one (account, source) before throttling. */
  maxFailures: number;
  failureWindowSeconds: number;
  /** Failed attempts for one account from every source before throttling (issue 20). */
  maxFailuresPerAccount: number;
}

export const DEFAULT_AUTH: AuthSettings = { tokenTtlSeconds: 3600, maxFailures: 10, failureWindowSeconds: 900, maxFailuresPerAccount: 10 };

/** Milliseconds since the epoch: Date.now, or a test's hand-moved clock. */
export type Clock = () => number;

export interface Session {
  token: string;
  actor: Actor;
  expiresAt: string;
  method: string;
}

const unauthorized = () => new Failure('unauthorized', 'invalid_credentials');

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Verified tokens, trusted from memory for `trustMs` after their verification (so a token revoked
 * on another node stops working here within it) and never past their expiry. Keyed by the token
 * itself: a hit costs one Map lookup, no hashing.
 */
export class TokenCache {
  private readonly entries = new Map<string, { session: Session; until: number; expires: number }>();

  constructor(
    private readonly clock: Clock = Date.now,
    private readonly trustMs = 1000,
  ) {}

  /** The session of a token verified less than `trustMs` ago, unexpired; undefined: verify it. */
  fresh(token: string): Session | undefined {
    const entry = this.entries.get(token);
    const now = this.clock();
    return entry !== undefined && entry.until > now && entry.expires > now ? entry.session : undefined;
  }

  /** The session of a token verified at any time before, unexpired (for when the database is out of reach). */
  known(token: string): Session | undefined {
    const entry = this.entries.get(token);
    return entry !== undefined && entry.expires > this.clock() ? entry.session : undefined;
  }

  add(token: string, session: Session, expiresMs: number): void {
    if (this.entries.size > 100_000) this.entries.clear();
    this.entries.set(token, { session, until: this.clock() + this.trustMs, expires: expiresMs });
  }

  delete(token: string): void {
    this.entries.delete(token);
  }
}

/** What one login attempt is counted against. */
export interface AttemptKeys {
  /** Accounts (or, when none matched, the name asked for): limited per source and across sources. */
  accounts: string[];
  /** Limited per source only (api_auth: any key guessed from one address). */
  perSource: string[];
  source: string;
}

/**
 * Counts login attempts in a sliding window, in the store, so an attacker spreading attempts over
 * several nodes meets one limit. An attempt is counted before its slow work, in the same
 * transaction as the check (writers are serialised), so attempts sent at once cannot all pass
 * the check before any is counted; a success then removes its own row.
 */
export class LoginThrottle {
  constructor(
    private readonly store: Store,
    private readonly settings: AuthSettings,
    private readonly clock: Clock = Date.now,
  ) {}

  private since(nowMs: number): string {
    return new Date(nowMs - this.settings.failureWindowSeconds * 1000).toISOString();
  }

  /** Seconds until a key with these attempts (oldest first) may try again under `limit`, or 0. */
  private wait(times: string[], limit: number, nowMs: number): number {
    if (times.length < limit) return 0;
    const opens = Date.parse(times[times.length - limit]!) + this.settings.failureWindowSeconds * 1000;
    return Math.max(1, Math.ceil((opens - nowMs) / 1000));
  }

  /** Counts the attempt and returns its id, or throws 429 (counting nothing) when a limit is reached. */
  async reserve(keys: AttemptKeys, nowMs = this.clock()): Promise<string> {
    const attempt = randomBytes(16).toString('hex');
    const since = this.since(nowMs);
    const { maxFailures, maxFailuresPerAccount } = this.settings;
    await this.store.transaction(async (tx) => {
      await tx.pruneLoginAttempts(since);
      let wait = 0;
      for (const key of keys.accounts) wait = Math.max(wait, this.wait(await tx.listLoginAttempts(key, since), maxFailuresPerAccount, nowMs));
      for (const key of [...keys.accounts, ...keys.perSource]) wait = Math.max(wait, this.wait(await tx.listLoginAttempts(key, since, keys.source), maxFailures, nowMs));
      if (wait > 0) throw new Failure('throttled', 'too many requests', { retryAfter: wait });
      const at = new Date(nowMs).toISOString();
      for (const key of [...keys.accounts, ...keys.perSource]) await tx.insertLoginAttempt(attempt, key, keys.source, at);
    });
    return attempt;
  }

  /** The attempt was no failure; `reset` keys forget the source's earlier failures too (api.md §2). */
  async succeed(attempt: string, reset: string[], source: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      await tx.deleteLoginAttempt(attempt);
      for (const key of reset) await tx.deleteLoginAttempts(key, source);
    });
  }
}

export interface AuthTime {
  /** What expiry, the login window and the token cache are measured by (default: Date.now). */
  clock?: Clock;
  /** Verified tokens trusted from memory (default: for a second, by `clock`). */
  cache?: TokenCache;
}

export class Authenticator {
  private readonly clock: Clock;
  private readonly cache: TokenCache;
  readonly throttle: LoginThrottle;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly settings: AuthSettings = DEFAULT_AUTH,
    time: AuthTime = {},
  ) {
    this.clock = time.clock ?? Date.now;
    this.cache = time.cache ?? new TokenCache(this.clock);
    this.throttle = new LoginThrottle(ctx.store, settings, this.clock);
  }

  /** A token, and the login in the audit trail (api.md §2: who, from where; never a secret). */
  private async issue(repo: Repository, account: AccountRow, ownerId: string | null, method: string, source: string): Promise<Session> {
    const issued = this.clock();
    const expires = new Date(issued + this.settings.tokenTtlSeconds * 1000);
    const header = base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url(JSON.stringify({ account_id: account.id, owner_id: ownerId, method, exp: Math.floor(expires.getTime() / 1000) }));
    const token = `${header}.${payload}.${base64url(randomBytes(32))}`;
    const row: TokenRow = { hash: hashToken(token), accountId: account.id, ownerId, method, expiresAt: expires.toISOString(), created: new Date(issued).toISOString() };
    // Expired tokens go as new ones come (an indexed delete of what has aged out since).
    await repo.deleteExpiredTokens(row.created);
    await repo.insertToken(row);
    const session = { token, expiresAt: row.expiresAt, method, actor: await this.actorOf(row, account) };
    await recordAudit(repo, session.actor, { accountId: account.id, action: 'login', resource: ownerId === null ? 'api_auth' : 'user_auth', resourceId: ownerId ?? account.id, after: { method, source } });
    return session;
  }

  private async actorOf(row: TokenRow, account: AccountRow): Promise<Actor> {
    const actor: Actor = { accountId: account.id, path: account.path, superduper: account.superduper, admin: true };
    if (row.ownerId !== null) {
      const user = await this.ctx.store.read.getUser(row.ownerId);
      if (!user) throw unauthorized();
      actor.userId = user.id;
      actor.admin = user.privLevel === 'admin';
    } else {
      actor.apiKey = true;
    }
    return actor;
  }

  /** `PUT /v2/user_auth`: the one user of exactly one matching account whose credentials match. */
  async userAuth(body: unknown, source: string): Promise<Session> {
    const valid = check(UserAuthSchema, body);
    const realm = valid.account_realm ?? valid.realm;
    const repo = this.ctx.store.read;
    const accounts = realm !== undefined ? [await repo.getAccountByRealm(realm.toLowerCase())].filter((a) => a !== undefined) : valid.account_name !== undefined ? await repo.findAccountsByNameKey(nameKeyOf(valid.account_name)) : [];
    // Counted against every account the attempt could open, however it names them.
    const asked = realm !== undefined ? `realm:${realm.toLowerCase()}` : `name:${nameKeyOf(valid.account_name ?? '')}`;
    const keys = accounts.length > 0 ? accounts.map((a) => `account:${a.id}`) : [`user:${asked}`];
    const attempt = await this.throttle.reserve({ accounts: keys, perSource: [], source });
    const match = await this.findUser(valid.credentials, accounts);
    if (match === undefined) throw unauthorized();
    await this.throttle.succeed(attempt, keys, source);
    return this.ctx.store.transaction((tx) => this.issue(tx, match.account, match.user.id, 'cb_user_auth', source));
  }

  /**
   * The user whose credentials these are, for one scrypt whatever the number of candidates (issue
   * 20). Each user's hash has its own salt and cost, so checking every candidate would cost one
   * scrypt each, and one shared salt would let a stolen database be attacked for all users at
   * once. Instead each user also stores a login tag, an HMAC of the credentials under the secret
   * key (which is not in the database): the tag picks the candidate, scrypt then proves it. Two
   * candidates with one tag have the same credentials in two accounts of that name: ambiguous
   * (api.md §2), refused. Every outcome spends exactly one scrypt, so the time tells nothing.
   * Users hashed before the tags existed have none: they are checked one by one (a scrypt each)
   * when no tag matched, and get their tag at their first login.
   */
  private async findUser(credentials: string, accounts: AccountRow[]): Promise<{ account: AccountRow; user: UserRow } | undefined> {
    const byId = new Map(accounts.map((a) => [a.id, a]));
    const repo = this.ctx.store.read;
    const tag = this.ctx.secrets.loginTag(credentials);
    const tagged = (await repo.listUsersByLoginTag(tag)).filter((u) => byId.has(u.accountId));
    if (tagged.length === 1) {
      const user = tagged[0]!;
      return (await verifyCredentials(credentials, user.passwordHash)) ? { account: byId.get(user.accountId)!, user } : undefined;
    }
    // Read when the tag was ambiguous too, so the time does not tell an ambiguous match from none.
    const untagged = (await Promise.all(accounts.map((a) => repo.listUsers(a.id)))).flat().filter((u) => u.loginTag === null);
    if (tagged.length > 1 || untagged.length === 0) {
      await verifyCredentials(credentials, DUMMY_HASH);
      return undefined;
    }
    const matches: UserRow[] = [];
    for (const user of untagged) if (await verifyCredentials(credentials, user.passwordHash)) matches.push(user);
    if (matches.length !== 1) return undefined;
    const user = matches[0]!;
    await this.ctx.store.transaction((tx) => tx.setLoginTag(user.id, tag));
    return { account: byId.get(user.accountId)!, user };
  }

  /** `PUT /v2/api_auth`: a token acting as an admin of the key's account. */
  async apiAuth(body: unknown, source: string): Promise<Session> {
    const valid = check(ApiAuthSchema, body);
    const account = await this.accountOfApiKey(valid.api_key, source);
    return this.ctx.store.transaction((tx) => this.issue(tx, account, null, 'cb_api_auth', source));
  }

  /**
   * The caller an API key names, throttled as `api_auth` is, without issuing a token (an API key
   * acts as its account's admin, as the token `api_auth` issues does).
   */
  async actorOfApiKey(apiKey: string, source: string): Promise<Actor> {
    const account = await this.accountOfApiKey(apiKey, source);
    return { accountId: account.id, path: account.path, superduper: account.superduper, admin: true, apiKey: true };
  }

  private async accountOfApiKey(apiKey: string, source: string): Promise<AccountRow> {
    // Keys are guessed one per attempt, so the limit is per source, whatever the key.
    const attempt = await this.throttle.reserve({ accounts: [], perSource: ['api_auth'], source });
    const account = await this.ctx.store.read.getAccountByApiKeyHash(apiKeyHashOf(apiKey));
    if (!account) throw unauthorized();
    // The source's earlier failures stay counted: a tenant's own key must not buy more guesses.
    await this.throttle.succeed(attempt, [], source);
    return account;
  }

  /** The session of a token verified a moment ago (the token cache's trust), without waiting; undefined: ask verify(). */
  cachedSession(token: string): Session | undefined {
    return this.cache.fresh(token);
  }

  /** The session a token opens, or 401. Verified tokens are trusted from memory for a while (TokenCache). */
  async verify(token: string): Promise<Session> {
    const hit = this.cache.fresh(token);
    if (hit !== undefined) return hit;
    let row: TokenRow | undefined;
    try {
      row = await this.ctx.store.read.getToken(hashToken(token));
    } catch (error) {
      // api.md §6: a node cut off from the database keeps answering decisions, so a token it
      // verified before stays good (until it expires) while the database cannot be reached.
      const known = error instanceof StoreUnavailableError ? this.cache.known(token) : undefined;
      if (known !== undefined) return known;
      throw error;
    }
    this.cache.delete(token);
    if (!row || Date.parse(row.expiresAt) <= this.clock()) throw unauthorized();
    const account = await this.ctx.store.read.getAccount(row.accountId);
    if (!account) throw unauthorized();
    const session = { token, expiresAt: row.expiresAt, method: row.method, actor: await this.actorOf(row, account) };
    this.cache.add(token, session, Date.parse(row.expiresAt));
    return session;
  }

  /** `DELETE /v2/token_auth`: the token stops working (on other nodes within the cache's second). */
  async revoke(token: string, actor: Actor): Promise<void> {
    this.cache.delete(token);
    await this.ctx.store.transaction(async (tx) => {
      await tx.deleteToken(hashToken(token));
      await recordAudit(tx, actor, { accountId: actor.accountId, action: 'logout', resource: 'token_auth', resourceId: actor.userId ?? actor.accountId });
    });
  }
}
