// The SQLite store's checkpointer (sqlite.ts): its own connection, in a worker thread, so the
// copy of the WAL into the database and its fsync never hold the event loop. Plain JavaScript:
// a worker's entry file is loaded before any TypeScript loader hook.
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { runInBackground } from '../background-thread.js';

runInBackground();

const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  // PASSIVE: copies what no reader still needs, never waits on the writer.
  db.pragma('wal_checkpoint(PASSIVE)');
});
