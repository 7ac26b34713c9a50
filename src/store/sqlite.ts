// The embedded store: better-sqlite3 in WAL mode. better-sqlite3 is synchronous, so a
// transaction holds the single writer connection from BEGIN IMMEDIATE to COMMIT while its async
// function runs; transactions queue behind one another, and plain reads go to a second
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

  return {
    kind: 'sqlite',
    read,
    transaction<T>(fn: (tx: Repository) => Promise<T>): Promise<T> {
      const run = async () => {
        writer.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(writeRepo);
          writer.exec('COMMIT');
          return result;
        } catch (error) {
          if (writer.inTransaction) writer.exec('ROLLBACK');
          throw error;
        }
      };
      const result = queue.then(run, run);
      queue = result.catch(() => undefined);
      return result;
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
