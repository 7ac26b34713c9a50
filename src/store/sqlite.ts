// The embedded store: better-sqlite3 in WAL mode. better-sqlite3 is synchronous, so a
// transaction holds the single writer connection while its async function runs; transactions
// queue behind one another (committed in groups, below), and plain reads go to a second
// connection that only ever sees committed data. Two worker threads keep long work off the event
// loop: one checkpoints the WAL, one runs a long transaction aside (a bulk load's) on a
// connection of its own, in its turn in the queue.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadMigrations, statementsOf } from './migrations.ts';
import type { Repository, Store } from './port.ts';
import { UniqueViolationError } from './port.ts';
import { pace } from './turns.ts';
import { AsideRunner } from './aside-runner.ts';
import type { SqlExecutor } from './sql-repository.ts';
import { SqlRepository } from './sql-repository.ts';

type Param = string | number | null;

/** Most transactions sharing one COMMIT. */
const MAX_GROUP = 64;
/** Least time between two checkpoints. */
const CHECKPOINT_MS = 200;

function translateError(error: unknown): unknown {
  const code = (error as { code?: string }).code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return new UniqueViolationError(error);
  return error;
}

export function executorOf(db: Database.Database): SqlExecutor {
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

/**
 * Copies the WAL back into the database file (and fsyncs it) from a worker thread, so no request
 * waits behind a checkpoint: the writer connection never checkpoints by itself. A commit asks for
 * one CHECKPOINT_MS later, unless one is asked for already; the worker starts on the first ask.
 */
class Checkpointer {
  private worker: Worker | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly file: string) {}

  committed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      (this.worker ??= this.start()).postMessage('checkpoint');
    }, CHECKPOINT_MS);
    this.timer.unref();
  }

  private start(): Worker {
    const worker = new Worker(new URL('./sqlite-checkpoint-worker.js', import.meta.url), { workerData: { file: this.file } });
    worker.unref();
    // A failed checkpoint leaves the WAL longer, nothing lost: a later commit starts another worker.
    worker.on('error', () => {
      if (this.worker === worker) this.worker = null;
    });
    return worker;
  }

  /** Stops the worker, its connection closed (the writer's close, the last, then checkpoints and removes the WAL). */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    // Awaited, its exit keeps the process alive; idle, it did not.
    worker.ref();
    worker.postMessage('close');
    await exited;
  }
}

/** A connection as every one of the store's is set up (the aside worker opens its own with it). */
export function openConnection(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // WAL with NORMAL fsyncs at checkpoints, not at each COMMIT: a committed write survives the
  // process crashing; a power loss may take back the last moments' writes (docs/performance.md).
  db.pragma('synchronous = NORMAL');
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
  const writer = openConnection(file);
  writer.pragma('wal_autocheckpoint = 0');
  migrate(writer);
  // An in-memory database is private to its connection: there, reads share the writer.
  const reader = file === ':memory:' ? writer : openConnection(file);
  const writeRepo = new SqlRepository(executorOf(writer));
  const read: Repository = new SqlRepository(executorOf(reader));
  let queue: Promise<unknown> = Promise.resolve();
  // Group commit: transactions run one after another, each in a savepoint of one outer
  // transaction that stays open until the event loop has had a turn (every request that arrived
  // meanwhile has then written) or MAX_GROUP have joined, so one COMMIT (the WAL's pages written
  // once, not once per write) serves them all. Each caller hears back only once its group is
  // committed; a transaction that fails rolls back its own savepoint alone.
  let running = false;
  let turnPassed = false;
  let turn: NodeJS.Immediate | null = null;
  let group: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  const checkpoints = file === ':memory:' ? null : new Checkpointer(file);
  const aside = file === ':memory:' ? null : new AsideRunner(new URL('./sqlite-aside-worker.js', import.meta.url), { file });
  const endGroup = () => {
    turnPassed = false;
    const members = group;
    group = [];
    if (members.length === 0) {
      if (writer.inTransaction) writer.exec('ROLLBACK');
      return;
    }
    try {
      writer.exec('COMMIT');
    } catch (error) {
      if (writer.inTransaction) writer.exec('ROLLBACK');
      for (const member of members) member.reject(error);
      return;
    }
    checkpoints?.committed();
    for (const member of members) member.resolve();
  };
  const onTurn = () => {
    turn = null;
    if (running) turnPassed = true;
    else endGroup();
  };
  const settle = () => {
    if (group.length >= MAX_GROUP || turnPassed) endGroup();
    else turn ??= setImmediate(onTurn);
  };
  const drain = async () => {
    await queue;
    if (turn) clearImmediate(turn);
    turn = null;
    endGroup();
  };

  return {
    kind: 'sqlite',
    read,
    transaction<T>(fn: (tx: Repository) => Promise<T>): Promise<T> {
      const run = async (): Promise<{ result: T; committed: Promise<void> }> => {
        // better-sqlite3 holds the event loop for every statement: transactions that arrive
        // together (sixteen requests answered by one commit come back together) would run back
        // to back for tens of milliseconds; paced, the loop goes round between them.
        await pace();
        if (!writer.inTransaction) writer.exec('BEGIN IMMEDIATE');
        writer.exec('SAVEPOINT tx');
        running = true;
        // One that outlasts this turn is committed as soon as it ends, not joined by the next.
        turn ??= setImmediate(onTurn);
        let result: T;
        try {
          result = await fn(writeRepo);
          writer.exec('RELEASE tx');
        } catch (error) {
          writer.exec('ROLLBACK TO tx');
          writer.exec('RELEASE tx');
          running = false;
          settle();
          throw error;
        }
        running = false;
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
    ...(aside === null
      ? {}
      : {
          transactionAside<I, O>(task: { readonly module: string; readonly name: string }, input: I, options: { rollback?: boolean } = {}): Promise<O> {
            const run = async (): Promise<O> => {
              await pace();
              // The worker's connection writes next: this one's open group is committed first.
              if (turn) clearImmediate(turn);
              turn = null;
              endGroup();
              const output = await aside.run<O>(task, input, options.rollback === true);
              if (!options.rollback) checkpoints?.committed();
              return output;
            };
            const ran = queue.then(run, run);
            queue = ran.catch(() => undefined);
            return ran;
          },
        }),
    async purge() {
      // VACUUM rewrites every page (free space and stale cells left by page splits included),
      // then the WAL's frames are copied over the old file and the WAL emptied.
      await drain();
      writer.exec('VACUUM');
      writer.pragma('wal_checkpoint(TRUNCATE)');
    },
    async ping() {
      reader.prepare('SELECT 1').get();
    },
    async close() {
      await drain();
      await aside?.close();
      await checkpoints?.close();
      if (reader !== writer) reader.close();
      writer.close();
    },
  };
}
