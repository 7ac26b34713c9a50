// What an aside worker (sqlite-aside-worker.js, postgres-aside-worker.js) does with the tasks it
// is sent (aside-runner.ts): each task is the function `name` exported by the module at URL
// `module`, run as (tx, input) in one transaction of the worker's own connection, committed, or
// rolled back once it has answered when `rollback` is asked; its output, or its error as plain
// data (name, message and own fields), is posted back. Plain JavaScript, as the entries are.
import { parentPort } from 'node:worker_threads';

/**
 * Serves tasks until told to close. `inTransaction(fn, rollback)` runs `fn(tx)` in a transaction
 * and resolves with its result; `close()` lets the connection go.
 */
export function serveTasks(inTransaction, close) {
  parentPort.on('message', async ({ close: closing, module, name, input, rollback }) => {
    if (closing) {
      await close();
      parentPort.close();
      return;
    }
    try {
      const task = (await import(module))[name];
      const output = await inTransaction((tx) => task(tx, input), rollback === true);
      parentPort.postMessage({ output });
    } catch (error) {
      const thrown = error instanceof Error ? error : new Error(String(error));
      parentPort.postMessage({ error: { ...thrown, name: thrown.name, message: thrown.message } });
    }
  });
  parentPort.postMessage({ ready: true });
}
