// The embedded store: better-sqlite3 in WAL mode. better-sqlite3 is synchronous, so a
// transaction holds the single writer connection while its async function runs; transactions
// queue behind one another (committed in groups, below), and plain reads go to a second
// connection that only ever sees committed data.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadMigrations, statementsOf } from './migrations.ts';
import type { Repository, Store } from './port.ts';
import { UniqueViolationError } from './port.ts';
import type { SqlExecutor } from './sql-repository.ts';
import { SqlRepository } from './sql-repository.ts';

type Param = string | number | null;

/** Most transactions sharing one COMMIT. */
const MAX_GROUP = 64;

function translateError(error: unknown): unknown {
  const code = (error as { code?: string }).code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return new UniqueViolationError(error);
  return error;
}

function executorOf(db: Database.Database): SqlExecutor {
  const cache = new Map<string, Database.Statement>();
  const prepare = (sql: string) => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  };
  return {
    async all(sql: string, params: Param[] = []) {
      try {
        return prepare(sql).all(...params) as Record<string, unknown>[];
      } catch (error) {
        throw translateError(error);
      }
    },
    async run(sql: string, params: Param[] = []) {
      try {
        return prepare(sql).run(...params).changes;
      } catch (error) {
        throw translateError(error);
      }
    },
    // The writer connection is already exclusive from BEGIN IMMEDIATE on.
    async lockChangeFeed() {},
    arrays: false,
  };
}

function open(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  for (const migration of loadMigrations()) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      for (const statement of statementsOf(migration.sql)) db.exec(statement);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, new Date().toISOString());
    }).immediate();
  }
}

export function openSqliteStore(file: string): Store {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const writer = open(file);
  migrate(writer);
  // An in-memory database is private to its connection: there, reads share the writer.
  const reader = file === ':memory:' ? writer : open(file);
  const writeRepo = new SqlRepository(executorOf(writer));
  const read: Repository = new SqlRepository(executorOf(reader));
  let queue: Promise<unknown> = Promise.resolve();
  // Group commit: transactions run one after another, each in a savepoint of one outer
  // transaction that stays open while more are queued (up to MAX_GROUP), so one COMMIT (one
  // fsync, the cost of a write here) serves them all. Each caller hears back only once its group
  // is committed; a transaction that fails rolls back its own savepoint alone.
  let waiting = 0;
  let group: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  const commitGroup = () => {
    const members = group;
    group = [];
    try {
      writer.exec('COMMIT');
    } catch (error) {
      if (writer.inTransaction) writer.exec('ROLLBACK');
      for (const member of members) member.reject(error);
      return;
    }
    for (const member of members) member.resolve();
  };
  const settle = () => {
    if (waiting > 0 && group.length < MAX_GROUP) return;
    if (group.length > 0) commitGroup();
    else if (writer.inTransaction) writer.exec('ROLLBACK');
  };

  return {
    kind: 'sqlite',
    read,
    transaction<T>(fn: (tx: Repository) => Promise<T>): Promise<T> {
      waiting++;
      const run = async (): Promise<{ result: T; committed: Promise<void> }> => {
        waiting--;
        if (!writer.inTransaction) writer.exec('BEGIN IMMEDIATE');
        writer.exec('SAVEPOINT tx');
        let result: T;
        try {
          result = await fn(writeRepo);
          writer.exec('RELEASE tx');
        } catch (error) {
          writer.exec('ROLLBACK TO tx');
          writer.exec('RELEASE tx');
          settle();
          throw error;
        }
        const committed = new Promise<void>((resolve, reject) => group.push({ resolve, reject }));
        settle();
        return { result, committed };
      };
      const ran = queue.then(run, run);
      queue = ran.catch(() => undefined);
      return ran.then(async ({ result, committed }) => {
        await committed;
        return result;
      });
    },
    async purge() {
      // VACUUM rewrites every page (free space and stale cells left by page splits included),
      // then the WAL's frames are copied over the old file and the WAL emptied.
      await queue;
      writer.exec('VACUUM');
      writer.pragma('wal_checkpoint(TRUNCATE)');
    },
    async ping() {
      reader.prepare('SELECT 1').get();
    },
    async close() {
      await queue;
      if (reader !== writer) reader.close();
      writer.close();
    },
  };
}
