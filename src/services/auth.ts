// Authentication (api.md §2): `user_auth` with KAZOO's md5 credentials, `api_auth` with the
// account's API key, and tokens. A token is JWT-shaped because Monster UI decodes its payload at
// login, but it is only ever trusted by looking up its hash; the payload is for the client.

import { createHash, randomBytes } from 'node:crypto';
import type { AccountRow, Repository, Store, TokenRow } from '../store/port.ts';
import { StoreUnavailableError } from '../store/port.ts';
import type { Actor } from './actor.ts';
import type { ServiceContext } from './context.ts';
import { Failure } from './errors.ts';
import { DUMMY_HASH, verifyCredentials } from './passwords.ts';
import { nameKeyOf } from './accounts.ts';
import { ApiAuthSchema, check, UserAuthSchema } from './schemas.ts';

export interface AuthSettings {
  tokenTtlSeconds: number;
  /** Failed attempts for one (account, source) before throttling. */
  maxFailures: number;
  failureWindowSeconds: number;
}

export const DEFAULT_AUTH: AuthSettings = { tokenTtlSeconds: 3600, maxFailures: 10, failureWindowSeconds: 900 };

/** How long a verified token is trusted from memory: a revoked token stops working within this. */
const TOKEN_CACHE_MS = 1000;

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
 * Counts failed logins per (account key, source address) in a sliding window. The counts live in
 * the store, so an attacker spreading attempts over several nodes meets one limit.
 */
export class LoginThrottle {
  constructor(
    private readonly store: Store,
    private readonly settings: AuthSettings,
  ) {}

  private since(nowMs: number): string {
    return new Date(nowMs - this.settings.failureWindowSeconds * 1000).toISOString();
  }

  /** Seconds until the pair may try again, or 0: the window ends when its oldest counted failure ages out. */
  async retryAfter(key: string, nowMs = Date.now()): Promise<number> {
    const recent = await this.store.read.listLoginFailures(key, this.since(nowMs));
    if (recent.length < this.settings.maxFailures) return 0;
    const opens = Date.parse(recent[recent.length - this.settings.maxFailures]!) + this.settings.failureWindowSeconds * 1000;
    return Math.max(1, Math.ceil((opens - nowMs) / 1000));
  }

  async fail(key: string, nowMs = Date.now()): Promise<void> {
    await this.store.transaction(async (tx) => {
      await tx.pruneLoginFailures(this.since(nowMs));
      await tx.insertLoginFailure(key, new Date(nowMs).toISOString());
    });
  }

  async succeed(key: string): Promise<void> {
    await this.store.transaction((tx) => tx.deleteLoginFailures(key));
  }
}

export class Authenticator {
  private readonly cache = new Map<string, { session: Session; until: number; expires: number }>();
  readonly throttle: LoginThrottle;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly settings: AuthSettings = DEFAULT_AUTH,
  ) {
    this.throttle = new LoginThrottle(ctx.store, settings);
  }

  private async guard(key: string): Promise<void> {
    const wait = await this.throttle.retryAfter(key);
    if (wait > 0) throw new Failure('throttled', 'too many requests', { retryAfter: wait });
  }

  private async issue(repo: Repository, account: AccountRow, ownerId: string | null, method: string): Promise<Session> {
    const expires = new Date(Date.now() + this.settings.tokenTtlSeconds * 1000);
    const header = base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url(JSON.stringify({ account_id: account.id, owner_id: ownerId, method, exp: Math.floor(expires.getTime() / 1000) }));
    const token = `${header}.${payload}.${base64url(randomBytes(32))}`;
    const row: TokenRow = { hash: hashToken(token), accountId: account.id, ownerId, method, expiresAt: expires.toISOString(), created: new Date().toISOString() };
    // Expired tokens go as new ones come (an indexed delete of what has aged out since).
    await repo.deleteExpiredTokens(row.created);
    await repo.insertToken(row);
    const session = { token, expiresAt: row.expiresAt, method, actor: await this.actorOf(row, account) };
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
    const key = `user:${realm !== undefined ? `realm:${realm.toLowerCase()}` : `name:${nameKeyOf(valid.account_name ?? '')}`}|${source}`;
    await this.guard(key);
    const repo = this.ctx.store.read;
    const accounts = realm !== undefined ? [await repo.getAccountByRealm(realm.toLowerCase())].filter((a) => a !== undefined) : valid.account_name !== undefined ? await repo.findAccountsByNameKey(nameKeyOf(valid.account_name)) : [];
    const matches: { account: AccountRow; userId: string }[] = [];
    for (const account of accounts) {
      for (const user of await repo.listUsers(account.id)) {
        if (await verifyCredentials(valid.credentials, user.passwordHash)) matches.push({ account, userId: user.id });
      }
    }
    if (accounts.length === 0) await verifyCredentials(valid.credentials, DUMMY_HASH);
    if (matches.length !== 1) {
      await this.throttle.fail(key);
      throw unauthorized();
    }
    await this.throttle.succeed(key);
    const { account, userId } = matches[0]!;
    return this.ctx.store.transaction((tx) => this.issue(tx, account, userId, 'cb_user_auth'));
  }

  /** `PUT /v2/api_auth`: a token acting as an admin of the key's account. */
  async apiAuth(body: unknown, source: string): Promise<Session> {
    const valid = check(ApiAuthSchema, body);
    const account = await this.accountOfApiKey(valid.api_key, source);
    return this.ctx.store.transaction((tx) => this.issue(tx, account, null, 'cb_api_auth'));
  }

  /** The account an API key names, throttled as `api_auth` is, without issuing a token. */
  async accountOfApiKey(apiKey: string, source: string): Promise<AccountRow> {
    const key = `api:${hashToken(apiKey)}|${source}`;
    await this.guard(key);
    const account = await this.ctx.store.read.getAccountByApiKey(apiKey);
    if (!account) {
      await this.throttle.fail(key);
      throw unauthorized();
    }
    await this.throttle.succeed(key);
    return account;
  }

  /**
   * The session of a token verified less than a second ago, without waiting: keyed by the token
   * itself, a hit costs one Map lookup, no hashing. Undefined: ask verify().
   */
  cachedSession(token: string, nowMs = Date.now()): Session | undefined {
    const cached = this.cache.get(token);
    return cached !== undefined && cached.until > nowMs && cached.expires > nowMs ? cached.session : undefined;
  }

  /** The session a token opens, or 401. Verified tokens are trusted from memory for a second. */
  async verify(token: string): Promise<Session> {
    const nowMs = Date.now();
    const hit = this.cachedSession(token, nowMs);
    if (hit !== undefined) return hit;
    const cached = this.cache.get(token);
    const hash = hashToken(token);
    let row: TokenRow | undefined;
    try {
      row = await this.ctx.store.read.getToken(hash);
    } catch (error) {
      // api.md §6: a node cut off from the database keeps answering decisions, so a token it
      // verified before stays good (until it expires) while the database cannot be reached.
      if (error instanceof StoreUnavailableError && cached && cached.expires > nowMs) return cached.session;
      throw error;
    }
    this.cache.delete(token);
    if (!row || Date.parse(row.expiresAt) <= nowMs) throw unauthorized();
    const account = await this.ctx.store.read.getAccount(row.accountId);
    if (!account) throw unauthorized();
    const session = { token, expiresAt: row.expiresAt, method: row.method, actor: await this.actorOf(row, account) };
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(token, { session, until: nowMs + TOKEN_CACHE_MS, expires: Date.parse(row.expiresAt) });
    return session;
  }

  async revoke(token: string): Promise<void> {
    this.cache.delete(token);
    await this.ctx.store.transaction((tx) => tx.deleteToken(hashToken(token)));
  }
}
