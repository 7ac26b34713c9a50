// Builds trunk tables aside (issue 23): the blocks are collected on the event loop a slice at a
// time, and a large table is compiled in a worker thread, so lookups and packets never wait for
// a build. One worker, started on first need, serves every build in turn.

import { Worker } from 'node:worker_threads';
import type { IndexTrunkEntry, TrunkBuildInput, TrunkBuildOutput } from '../core/trunk-table.ts';
import { buffersOf, buildTrunkBase, TrunkRebuild, TrunkTable } from '../core/trunk-table.ts';
import { pace } from '../store/turns.ts';

/** Below this many blocks a build takes about a millisecond: done in place. */
const IN_PLACE_MAX = 2048;
/** Blocks collected between two looks at the clock. */
const FILL_SLICE = 2048;

export class TrunkBuilder {
  private worker: Worker | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  /** Compiles `input`: in place when small, else in the worker, which then owns its arrays. */
  compile(input: TrunkBuildInput): Promise<TrunkBuildOutput> {
    if (input.count <= IN_PLACE_MAX) return Promise.resolve(buildTrunkBase(input));
    const run = () => this.inWorker(input);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Collects `rebuild`'s blocks in slices, then compiles them. */
  async complete(rebuild: TrunkRebuild): Promise<TrunkBuildOutput> {
    while (!rebuild.fill(FILL_SLICE)) await pace();
    return this.compile(rebuild.input);
  }

  /** A whole new table of `entries` (a resync), built aside. */
  async build(entries: readonly IndexTrunkEntry[]): Promise<TrunkTable> {
    const rebuild = TrunkRebuild.of(entries);
    const output = await this.complete(rebuild);
    return TrunkTable.fromBuild(rebuild.entries, output);
  }

  private inWorker(input: TrunkBuildInput): Promise<TrunkBuildOutput> {
    const worker = (this.worker ??= this.startWorker());
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => {
        worker.off('message', onMessage);
        this.worker = null;
        reject(error);
      };
      const onMessage = (output: TrunkBuildOutput) => {
        worker.off('error', onError);
        worker.unref();
        resolve(output);
      };
      worker.once('message', onMessage);
      worker.once('error', onError);
      // A build awaited keeps the process alive (a CLI verb); an idle worker does not.
      worker.ref();
      worker.postMessage(input, buffersOf(input));
    });
  }

  private startWorker(): Worker {
    return new Worker(new URL('./trunk-build-worker.js', import.meta.url));
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }
}
