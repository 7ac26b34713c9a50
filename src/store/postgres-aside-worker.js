// The PostgreSQL store's worker for transactions run aside (store.transactionAside, postgres.ts,
// aside-runner.ts): a store of its own on the same database, in a thread of its own, so a bulk
// load's rows, statements and audit entries are built and sent off the event loop. Its
// transactions are the store's own (the writer lock, pg_notify at COMMIT). Plain JavaScript, as
// sqlite-aside-worker.js.
import { workerData } from 'node:worker_threads';
import { runInBackground } from '../background-thread.js';
import { register } from 'tsx/esm/api';
import { serveTasks } from './aside-tasks.js';

runInBackground();

register();
const { openPostgresStore } = await import('./postgres.ts');
const store = await openPostgresStore(workerData.url);

/** Thrown to roll a task's transaction back once it has answered. */
class RolledBack extends Error {}

serveTasks(
  async (fn, rollback) => {
    let output;
    try {
      await store.transaction(async (tx) => {
        output = await fn(tx);
        if (rollback) throw new RolledBack();
      });
    } catch (error) {
      if (!(error instanceof RolledBack)) throw error;
    }
    return output;
  },
  () => store.close(),
);
