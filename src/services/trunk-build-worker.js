// The worker thread that compiles a large trunk table aside (issue 23: no stall). Plain
// JavaScript because a worker's entry file is loaded before any loader hook: it registers tsx
// itself, then runs the TypeScript build.
import { parentPort } from 'node:worker_threads';
import { runInBackground } from '../background-thread.js';
import { register } from 'tsx/esm/api';

runInBackground();

register();
const { buildTrunkBase, buffersOf } = await import('../core/trunk-table.ts');
parentPort.on('message', (input) => {
  const output = buildTrunkBase(input);
  parentPort.postMessage(output, buffersOf(output));
});
