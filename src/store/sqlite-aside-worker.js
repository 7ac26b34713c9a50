// The SQLite store's worker for transactions run aside (store.transactionAside, sqlite.ts): a
// connection of its own, in a thread of its own, so a long transaction's statements and its
// COMMIT never hold the event loop. Plain JavaScript: a worker's entry file is loaded before any
// loader hook, so it registers tsx itself, then loads the store and each task's module.
import { parentPort, workerData } from 'node:worker_threads';
import { runInBackground } from '../background-thread.js';
import { register } from 'tsx/esm/api';

runInBackground();

register();
const { openConnection, executorOf } = await import('./sqlite.ts');
const { SqlRepository } = await import('./sql-repository.ts');
const db = openConnection(workerData.file);
const repo = new SqlRepository(executorOf(db));

parentPort.on('message', async ({ close, module, name, input, rollback }) => {
  if (close) {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const task = (await import(module))[name];
    db.exec('BEGIN IMMEDIATE');
    let output;
    try {
      output = await task(repo, input);
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
    db.exec(rollback ? 'ROLLBACK' : 'COMMIT');
    parentPort.postMessage({ output });
  } catch (error) {
    const thrown = error instanceof Error ? error : new Error(String(error));
    parentPort.postMessage({ error: { ...thrown, name: thrown.name, message: thrown.message } });
  }
});
parentPort.postMessage({ ready: true });
