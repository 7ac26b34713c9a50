// Issue 20, API keys at rest: stored as a hash (the lookup) and a sealed copy (GET …/api_key),
// under a secret key given or generated once into the data directory; PUT …/api_key rotates, and
// the old key stops working on every node. Keys stored in plaintext by earlier releases are sealed.

import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/api/app.ts';
import { loadConfig } from '../../src/config.ts';
import { startServices } from '../../src/main.ts';
import { credentialsOf, hashCredentials } from '../../src/services/passwords.ts';
import { loadMigrations, statementsOf } from '../../src/store/migrations.ts';
import { TestClock } from '../support/clock.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { assertError, ok } from '../support/responses.ts';

const apiKeyOf = async (h: Harness, accountId: string, token: string) => ok(await h.request('GET', `/v2/accounts/${accountId}/api_key`, { token })).data.api_key as string;
const apiAuth = (h: Harness, apiKey: string) => h.request('PUT', '/v2/api_auth', { body: { data: { api_key: apiKey } } });

describe('API keys', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('PUT …/api_key: a new key in the answer only, the old one refused on this node and on another over the same database', async () => {
    const a = await h.account('Rotated');
    const old = await apiKeyOf(h, a.id, a.token);
    const oldSession = ok(await apiAuth(h, old), 201).auth_token as string;

    // A second node: its own services and app over the same database file and key, its clock
    // standing still until the test moves it.
    const otherClock = new TestClock('frozen');
    const other = await startServices(h.config, undefined, { clock: otherClock.now });
    const otherApp = await buildApp(other, { corsOrigin: '*', bodyLimit: 1 << 20, registry: new Registry() });
    try {
      const onOther = (method: 'GET' | 'PUT', url: string, options: { token?: string; data?: unknown } = {}) =>
        otherApp.inject({ method, url, headers: options.token ? { 'x-auth-token': options.token } : {}, ...(options.data ? { payload: { data: options.data } } : {}) });
      // The other node has verified (and cached) the old key's session.
      assert.equal((await onOther('GET', '/v2/token_auth', { token: oldSession })).statusCode, 200);

      const rotated = ok(await h.request('PUT', `/v2/accounts/${a.id}/api_key`, { token: a.token }), 201);
      const fresh = rotated.data.api_key as string;
      assert.match(fresh, /^[0-9a-f]{64}$/);
      assert.notEqual(fresh, old);
      assert.deepEqual(Object.keys(rotated.data), ['api_key']);
      assert.equal(await apiKeyOf(h, a.id, a.token), fresh);

      assertError(await apiAuth(h, old), 401, 'invalid_credentials');
      assert.equal((await onOther('PUT', '/v2/api_auth', { data: { api_key: old } })).statusCode, 401);
      assert.equal((await onOther('PUT', '/v2/api_auth', { data: { api_key: fresh } })).statusCode, 201);
      ok(await apiAuth(h, fresh), 201);
      // The old key's sessions end with it: at once here, within the token cache's second there.
      assertError(await h.request('GET', '/v2/token_auth', { token: oldSession }), 401, 'invalid_credentials');
      assert.equal((await onOther('GET', '/v2/token_auth', { token: oldSession })).statusCode, 200, 'trusted from memory for its second');
      otherClock.advance(1000);
      assert.equal((await onOther('GET', '/v2/token_auth', { token: oldSession })).statusCode, 401);
      // A user's session is not a key's: it lives on.
      ok(await h.request('GET', '/v2/token_auth', { token: a.token }));
    } finally {
      await otherApp.close();
      await other.close();
    }
  });

  test('rotation is for admins of the account and its ancestors', async () => {
    const parent = await h.account('Key Parent');
    const child = await h.account('Key Child', { parentId: parent.id, token: parent.token });
    const user = await h.user(child.id, child.realm, 'user', child.token);
    const before = await apiKeyOf(h, child.id, child.token);
    assertError(await h.request('PUT', `/v2/accounts/${child.id}/api_key`, { token: user.token }), 403, 'forbidden');
    assertError(await h.request('PUT', `/v2/accounts/${parent.id}/api_key`, { token: child.token }), 403, 'forbidden');
    assert.equal(await apiKeyOf(h, child.id, child.token), before);
    const byParent = ok(await h.request('PUT', `/v2/accounts/${child.id}/api_key`, { token: parent.token }), 201).data.api_key;
    assert.equal(await apiKeyOf(h, child.id, child.token), byParent);
  });

  test('the database file holds no API key, no credentials and not the secret key', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await h.account(`Plain ${i}`);
      keys.push(await apiKeyOf(h, a.id, a.token));
      keys.push(ok(await h.request('PUT', `/v2/accounts/${a.id}/api_key`, { token: a.token }), 201).data.api_key);
    }
    keys.push(await apiKeyOf(h, h.master.id, h.master.token));
    const db = h.config.db;
    const bytes = Buffer.concat([db, `${db}-wal`].filter(existsSync).map((file) => readFileSync(file)));
    const secretKey = readFileSync(join(db, '..', 'secret.key'), 'utf8').trim();
    for (const secret of [...keys, credentialsOf('admin', 'secret'), credentialsOf('admin', 'pw'), secretKey]) {
      assert.equal(bytes.indexOf(secret), -1, `${secret.slice(0, 8)}… is in the database file`);
    }
    // What is there: the hash the lookup needs.
    assert.notEqual(bytes.indexOf(createHash('sha256').update(keys.at(-1)!).digest('hex')), -1);
  });
});

describe('the secret key', () => {
  const dirs: string[] = [];
  const freshDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipwarden-key-'));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('generated once into the data directory (owner-only), and said so; then reused', async () => {
    const dir = freshDir();
    const config = loadConfig({ db: join(dir, 'ipwarden.db') }, {});
    const first = await startServices(config);
    await first.close();
    const file = join(dir, 'secret.key');
    assert.match(readFileSync(file, 'utf8'), /^[0-9a-f]{64}\n$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(first.notice ?? '', /generated a new secret key into .*secret\.key/);
    const again = await startServices(config);
    await again.close();
    assert.equal(again.notice, undefined);
    assert.match(readFileSync(file, 'utf8'), /^[0-9a-f]{64}\n$/);
  });

  test('--secret-key / IPWARDEN_SECRET_KEY: nothing generated; a database set up with another key refuses to start', async () => {
    const dir = freshDir();
    const key = randomBytes(32).toString('hex');
    const db = join(dir, 'ipwarden.db');
    const given = await startServices(loadConfig({ db }, { IPWARDEN_SECRET_KEY: key }));
    await given.close();
    assert.equal(given.notice, undefined);
    assert.equal(existsSync(join(dir, 'secret.key')), false);
    await assert.rejects(startServices(loadConfig({ db, secretKey: randomBytes(32).toString('hex') }, {})), /another secret key/);
    await assert.rejects(startServices(loadConfig({ db }, {})), /another secret key/, 'a generated key is another key too');
    await assert.rejects(startServices(loadConfig({ db, secretKey: 'not-hex' }, {})), /64 hexadecimal/);
    const same = await startServices(loadConfig({ db, secretKey: key.toUpperCase() }, {}));
    await same.close();
  });

  test('an earlier release\'s plaintext API keys are sealed at start-up, and its users still log in', async () => {
    const dir = freshDir();
    const file = join(dir, 'ipwarden.db');
    // A database as release 002 left it.
    const old = new Database(file);
    old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    for (const m of loadMigrations().filter((m) => m.version <= 2)) {
      for (const statement of statementsOf(m.sql)) old.exec(statement);
      old.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, '2026-01-01T00:00:00Z');
    }
    old.pragma('journal_mode = WAL');
    const id = randomBytes(16).toString('hex');
    const plaintext = randomBytes(32).toString('hex');
    const at = '2026-01-01T00:00:00.000Z';
    old.prepare(`INSERT INTO accounts (id, name, name_key, realm, parent_id, path, superduper, api_key, extra, revision, created, modified) VALUES (?, 'Old', 'old', 'old.test', NULL, ?, 1, ?, '{}', '1-a', ?, ?)`).run(id, `/${id}/`, plaintext, at, at);
    // Enough others that pages split and leave copies behind.
    const others = Array.from({ length: 60 }, () => randomBytes(32).toString('hex'));
    for (const [i, key] of others.entries()) {
      const other = randomBytes(16).toString('hex');
      old.prepare(`INSERT INTO accounts (id, name, name_key, realm, parent_id, path, superduper, api_key, extra, revision, created, modified) VALUES (?, 'Other', 'other', ?, ?, ?, 0, ?, '{}', '1-a', ?, ?)`).run(other, `other${i}.test`, id, `/${id}/${other}/`, key, at, at);
    }
    for (const [userId, username] of [[randomBytes(16).toString('hex'), 'admin'], [randomBytes(16).toString('hex'), 'second']] as const) {
      old.prepare(`INSERT INTO users (id, account_id, username, password_hash, priv_level, extra, revision, created, modified) VALUES (?, ?, ?, ?, 'admin', '{}', '1-a', ?, ?)`).run(userId, id, username, await hashCredentials(credentialsOf(username, `${username}-pw`)), at, at);
    }
    old.close();

    const h = await startHarness({ db: file });
    try {
      const row = new Database(file, { readonly: true }).prepare('SELECT api_key_hash, api_key_sealed FROM accounts WHERE id = ?').get(id) as { api_key_hash: string; api_key_sealed: string };
      assert.equal(row.api_key_hash, createHash('sha256').update(plaintext).digest('hex'));
      assert.ok(!row.api_key_sealed.includes(plaintext));
      // Nor is any old key left in the files' free space or write-ahead log.
      const bytes = Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
      for (const key of [plaintext, ...others]) assert.equal(bytes.indexOf(key), -1, `${key.slice(0, 8)}… is still in the database file`);
      assert.equal(ok(await apiAuth(h, plaintext), 201).data.account_id, id);
      const login = await h.request('PUT', '/v2/user_auth', { body: { data: { credentials: credentialsOf('second', 'second-pw'), account_realm: 'old.test' } } });
      const token = ok(login, 201).auth_token as string;
      assert.equal(await apiKeyOf(h, id, token), plaintext);
      const tags = new Database(file, { readonly: true }).prepare('SELECT username, login_tag FROM users WHERE account_id = ? ORDER BY username').all(id) as { username: string; login_tag: string | null }[];
      assert.deepEqual(tags.map((t) => [t.username, t.login_tag === null]), [['admin', true], ['second', false]], 'the login gave its user a tag');
    } finally {
      await h.close();
    }
  });
});
