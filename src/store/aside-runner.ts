// A store's worker thread for transactions run aside (store.transactionAside, port.ts): it has a
// connection of its own, so a long transaction's statements, its rows and its COMMIT never hold
// the event loop. The worker entry (sqlite-aside-worker.js, postgres-aside-worker.js) opens that
// connection and serves tasks with aside-tasks.js.

import { Worker } from 'node:worker_threads';

/** One task at a time (the store's queue sees to it) in an aside worker, started on first need. */
export class AsideRunner {
  private worker: Promise<Worker> | null = null;

  /** `entry`: the worker's file; `workerData`: what it opens its own connection with. */
  constructor(
    private readonly entry: URL,
    private readonly workerData: unknown,
  ) {}

  async run<O>(task: { readonly module: string; readonly name: string }, input: unknown, rollback: boolean): Promise<O> {
    const worker = await (this.worker ??= this.start());
    return new Promise<O>((resolve, reject) => {
      const onError = (error: Error) => {
        worker.off('message', onMessage);
        this.worker = null;
        reject(error);
      };
      const onMessage = (reply: { output?: O; error?: { name: string; message: string } }) => {
        worker.off('error', onError);
        worker.unref();
        if (reply.error) reject(Object.assign(new Error(reply.error.message), reply.error));
        else resolve(reply.output!);
      };
      worker.once('message', onMessage);
      worker.once('error', onError);
      // A task awaited keeps the process alive (a CLI import); an idle worker does not.
      worker.ref();
      worker.postMessage({ module: task.module, name: task.name, input, rollback });
    });
  }

  private start(): Promise<Worker> {
    const worker = new Worker(this.entry, { workerData: this.workerData });
    return new Promise((resolve, reject) => {
      worker.once('message', () => {
        worker.off('error', reject);
        worker.unref();
        resolve(worker);
      });
      worker.once('error', (error) => {
        this.worker = null;
        reject(error);
      });
    });
  }

  async close(): Promise<void> {
    const started = this.worker;
    this.worker = null;
    const worker = await started?.catch(() => null);
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.ref();
    worker.postMessage({ close: true });
    await exited;
  }
}
