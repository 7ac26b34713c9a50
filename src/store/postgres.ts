// The shared store: PostgreSQL through `pg` (DATABASE_URL), for several nodes on one database.
// The same portable repository as SQLite runs over it; this file only supplies the executor,
// transactions, migrations and change notifications.
//
// - Write transactions take one advisory lock (scoped to this schema) right after BEGIN, so they
//   are serialised as port.ts promises: a check-then-write inside one (the trunk ACL overlap
//   check, realm checks, MAX+1 ids of the change feed and audit trail) is race-free under
//   READ COMMITTED, and ids follow commit order. Every writer takes that one lock first, so
//   writers cannot deadlock on one another.
// - A transaction that records a change (or an audit entry) sends `pg_notify` with the schema as
//   payload; PostgreSQL delivers it at COMMIT. A dedicated connection LISTENs and tells
//   `onChange` listeners, and tells them again whenever it reconnects (the change feed is
//   replayed from the last applied id, so nothing sent while it was away is lost).
// - Connection failures surface as StoreUnavailableError (503 `datastore fatal error`), unique
//   violations as UniqueViolationError.
// - A failed statement aborts a PostgreSQL transaction: after an error inside `transaction(fn)`,
//   `fn` must rethrow (every service does), not carry on.

import pg from 'pg';
import { loadMigrations, statementsOf } from './migrations.ts';
import type { Repository, Store } from './port.ts';
import { StoreUnavailableError, UniqueViolationError } from './port.ts';
import type { SqlExecutor } from './sql-repository.ts';
import { SqlRepository } from './sql-repository.ts';
import { AsideRunner } from './aside-runner.ts';

type Param = string | number | null | readonly string[];

/** The channel every node LISTENs on; the payload names the schema that changed. */
export const CHANGE_CHANNEL = 'ipwarden_changes';

// Advisory lock namespaces (the first key); the second key is a hash of the schema, so several
// ipwarden schemas in one database (tests, staging) do not serialise one another.
const WRITER_LOCK = 0x1b7a0001;
const MIGRATION_LOCK = 0x1b7a0002;
const LISTEN_RETRY_MS = 500;
const PING_TIMEOUT_MS = 2000;

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

const UNAVAILABLE_MESSAGES = /connection terminated|connection ended|timeout exceeded when trying to connect|connection timeout|client has encountered a connection error|not queryable|cannot use a pool after calling end/i;

/** Maps pg's errors onto the port's: unique violations and an unreachable database. */
export function translateError(error: unknown): unknown {
  if (error instanceof UniqueViolationError || error instanceof StoreUnavailableError) return error;
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (code === '23505') return new UniqueViolationError(error);
  // Class 08: connection exceptions.
  if (UNAVAILABLE_CODES.has(code) || code.startsWith('08')) return new StoreUnavailableError(error);
  if (typeof e?.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return new StoreUnavailableError(error);
  return error;
}

/** `?` placeholders to `$1..$n` (outside quoted literals and identifiers). */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}

/** A signed 32-bit FNV-1a hash, the second key of this schema's advisory locks. */
function lockKeyOf(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/**
 * The migration files are portable SQL; on PostgreSQL their TEXT columns get the "C" collation,
 * so comparisons and ORDER BY are bytewise as on SQLite (the trunk ACL ranges are compared as
 * fixed-width hex text) and `path LIKE 'prefix%'` can use an index whatever the database locale.
 */
export function adaptStatement(statement: string): string {
  if (!/^\s*(CREATE|ALTER)\s+TABLE\b/i.test(statement)) return statement;
  return statement.replace(/\b(\w+\s+)TEXT\b(?!\s+COLLATE)/g, '$1TEXT COLLATE "C"');
}

/**
 * Each statement as a named prepared statement (`$n` placeholders): PostgreSQL plans it once per
 * connection rather than on every call, which for the trunk overlap probes (a few dozen
 * parameters) was most of their cost.
 */
const statements = new Map<string, { name: string; text: string }>();
function statementOf(sql: string): { name: string; text: string } {
  let statement = statements.get(sql);
  if (statement === undefined) {
    statement = { name: `ipwarden_${statements.size}`, text: numberPlaceholders(sql) };
    statements.set(sql, statement);
  }
  return statement;
}

interface Queryable {
  query(config: pg.QueryConfig<Param[]>): Promise<pg.QueryResult>;
}

function executorOf(db: Queryable, onFeedWrite: () => Promise<void>): SqlExecutor {
  return {
    async all(sql: string, params: Param[] = []) {
      try {
        return (await db.query({ ...statementOf(sql), values: params })).rows as Record<string, unknown>[];
      } catch (error) {
        throw translateError(error);
      }
    },
    async run(sql: string, params: Param[] = []) {
      try {
        return (await db.query({ ...statementOf(sql), values: params })).rowCount ?? 0;
      } catch (error) {
        throw translateError(error);
      }
    },
    lockChangeFeed: onFeedWrite,
    arrays: true,
  };
}

async function connectClient(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (error) {
    throw translateError(error);
  }
}

/** The schema this URL's search_path selects (which may not exist yet), and whether it exists. */
async function resolveSchema(client: pg.PoolClient): Promise<{ schema: string; exists: boolean }> {
  const { rows } = await client.query<{ schema: string | null; path: string }>("SELECT current_schema() AS schema, current_setting('search_path') AS path");
  const found = rows[0]?.schema;
  if (found) return { schema: found, exists: true };
  const first = (rows[0]?.path ?? '').split(',')[0]?.trim().replace(/^"(.*)"$/, '$1') ?? '';
  if (first === '' || first === '$user') throw new Error('the PostgreSQL search_path names no schema to create the tables in');
  return { schema: first, exists: false };
}

/**
 * Creates the schema if need be and applies the missing migrations, in one transaction under an
 * advisory lock: nodes starting together take turns, and the later ones find the work done.
 */
async function migrate(client: pg.PoolClient, target: { schema: string; exists: boolean }, schemaKey: number): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [MIGRATION_LOCK, schemaKey]);
    if (!target.exists) await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(target.schema)}`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
    for (const migration of loadMigrations()) {
      if (applied.has(migration.version)) continue;
      for (const statement of statementsOf(migration.sql)) await client.query(adaptStatement(statement));
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, new Date().toISOString()]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Keeps one connection LISTENing; calls `notify` on each notification for this schema and on each (re)connect. */
class ChangeListener {
  private client: pg.Client | null = null;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  private connected = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly schema: string,
    private readonly notify: () => void,
  ) {}

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.retry = null;
    if (this.closed) return;
    const client = new pg.Client(this.config);
    this.client = client;
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      this.lost(client);
    };
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (message) => {
      if (message.channel === CHANGE_CHANNEL && message.payload === this.schema) this.notify();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch {
      onLost();
      return;
    }
    if (lost || this.closed) return;
    this.connected = true;
    // Whatever was committed while we were not listening is in the feed: catch up now.
    this.notify();
  }

  private lost(client: pg.Client): void {
    client.end().catch(() => undefined);
    if (this.client === client) this.client = null;
    if (this.closed) return;
    if (this.connected) {
      this.connected = false;
      // The listener catches up (and, the database being gone, marks its index stale).
      this.notify();
    }
    if (!this.retry) {
      this.retry = setTimeout(() => void this.connect(), LISTEN_RETRY_MS);
      this.retry.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => undefined);
  }
}

export interface PostgresStore extends Store {
  /** The schema the tables live in (from the URL's search_path). */
  readonly schema: string;
}

export async function openPostgresStore(url: string): Promise<PostgresStore> {
  const base: pg.PoolConfig = { connectionString: url, keepAlive: true, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000 };
  // Writers wait on one lock; they get their own pool so that they never starve plain reads.
  const readPool = new pg.Pool({ ...base, max: 8 });
  const writePool = new pg.Pool({ ...base, max: 8 });
  // An idle connection that dies emits 'error' on its pool; the pool drops it, the next query
  // opens a new one (and fails as StoreUnavailableError while the database is gone).
  readPool.on('error', () => undefined);
  writePool.on('error', () => undefined);

  let schema: string;
  let schemaKey: number;
  try {
    const client = await connectClient(writePool);
    try {
      const target = await resolveSchema(client);
      schema = target.schema;
      schemaKey = lockKeyOf(schema);
      await migrate(client, target, schemaKey);
    } finally {
      client.release();
    }
  } catch (error) {
    await Promise.all([readPool.end(), writePool.end()]).catch(() => undefined);
    throw translateError(error);
  }

  const read: Repository = new SqlRepository(
    executorOf(readPool, async () => {
      throw new Error('the change feed is written inside a transaction only');
    }),
  );
  const listeners = new Set<() => void>();
  const emit = () => {
    for (const listener of listeners) {
      try {
        listener();
      } catch {
        // a listener's failure is its own business
      }
    }
  };
  let listener: ChangeListener | null = null;
  let closed = false;
  const aside = new AsideRunner(new URL('./postgres-aside-worker.js', import.meta.url), { url });
  let asideQueue: Promise<unknown> = Promise.resolve();

  return {
    kind: 'postgres',
    schema,
    read,
    async transaction<T>(fn: (tx: Repository) => Promise<T>): Promise<T> {
      const client = await connectClient(writePool);
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1, $2)', [WRITER_LOCK, schemaKey]);
        let notified = false;
        const tx = new SqlRepository(
          executorOf(client, async () => {
            // The writer lock is already held; tell the other nodes at COMMIT.
            if (notified) return;
            notified = true;
            await client.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, schema]);
          }),
        );
        const result = await fn(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken = rollbackError;
        });
        throw translateError(error);
      } finally {
        client.release(broken);
      }
    },
    transactionAside<I, O>(task: { readonly module: string; readonly name: string }, input: I, options: { rollback?: boolean } = {}): Promise<O> {
      // The worker runs one task at a time; they wait for the writer lock like any transaction.
      const run = () => aside.run<O>(task, input, options.rollback === true);
      const ran = asideQueue.then(run, run);
      asideQueue = ran.catch(() => undefined);
      return ran;
    },
    async ping() {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StoreUnavailableError(new Error('ping timed out'))), PING_TIMEOUT_MS);
      });
      try {
        await Promise.race([readPool.query('SELECT 1').catch((error: unknown) => Promise.reject(translateError(error))), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    onChange(callback: () => void) {
      listeners.add(callback);
      if (!listener && !closed) {
        listener = new ChangeListener({ connectionString: url, keepAlive: true, connectionTimeoutMillis: 5000 }, schema, emit);
        listener.start();
      }
    },
    async close() {
      closed = true;
      listeners.clear();
      await listener?.close();
      await aside.close();
      await Promise.all([readPool.end(), writePool.end()]);
    },
  };
}
