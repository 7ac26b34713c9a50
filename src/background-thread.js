// A worker thread that only serves the main thread in the background (a checkpoint, a bulk
// transaction, an index build) asks the kernel to run it at a lower priority: on a machine with
// few cores, the main thread (requests, decisions) then gets a core first instead of waiting out
// the worker's time slice (issue 23: no decision waits more than 5 ms behind such work). Linux
// sets the nice value per thread; elsewhere this does nothing. Plain JavaScript: worker entry
// files load it before any TypeScript loader hook.
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

const NICE = 10;

export function runInBackground() {
  try {
    const tid = Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ', 1)[0]);
    setPriority(tid, NICE);
  } catch {
    // Not Linux, or no /proc: the thread keeps the process's priority.
  }
}
