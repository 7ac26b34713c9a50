// The SQLite store's worker for transactions run aside (store.transactionAside, sqlite.ts,
// aside-runner.ts): a connection of its own, in a thread of its own. Plain JavaScript: a worker's
// entry file is loaded before any loader hook, so it registers tsx itself, then loads the store
// and each task's module.
import { workerData } from 'node:worker_threads';
import { runInBackground } from '../background-thread.js';
import { register } from 'tsx/esm/api';
import { serveTasks } from './aside-tasks.js';

runInBackground();

register();
const { openConnection, executorOf } = await import('./sqlite.ts');
const { SqlRepository } = await import('./sql-repository.ts');
const db = openConnection(workerData.file);
const repo = new SqlRepository(executorOf(db));

serveTasks(
  async (fn, rollback) => {
    db.exec('BEGIN IMMEDIATE');
    let output;
    try {
      output = await fn(repo);
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
    db.exec(rollback ? 'ROLLBACK' : 'COMMIT');
    return output;
  },
  async () => db.close(),
);
