// One budget for the work done in slices on the event loop (issue 23: no decision or SIP packet
// waits more than 5 ms behind store or index work): SQLite transactions, a bulk load's checks, a
// catch-up of the change feed, an index rebuild's collection, an API request's handling. Each
// slice asks `pace()` first; once the loop has been busy for SLICE_MS in this turn (whatever kept
// it busy), the slice waits for the next turn, after the loop has run its timers and polled the
// network again. Kept in the store, the lowest layer that paces; services pace with it too.

import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

// 1 ms: with 3 (and a timer to wait on) the loop delay's p99 under 16 writers in flight was 6–8 ms;
// with 1 and the next turn's check phase to wait on, 3–4 ms at the same write rate.
const SLICE_MS = 1;
/** A mark older than this is of an earlier burst of work: counting from it would count that too. */
const STALE_MS = 50;

/** The loop's busy and idle time at the end of the last turn that paced, and when. */
let mark: { at: number; utilization: EventLoopUtilization } | null = null;
let marking = false;

function turnHasTime(): boolean {
  const now = performance.now();
  if (mark === null || now - mark.at > STALE_MS) mark = { at: now, utilization: performance.eventLoopUtilization() };
  if (!marking) {
    // The turn's end is marked in its check phase, only while something paces (an idle loop is
    // not kept spinning).
    marking = true;
    setImmediate(() => {
      marking = false;
      mark = { at: performance.now(), utilization: performance.eventLoopUtilization() };
    });
  }
  // The loop's busy time since the mark: this turn's work so far.
  return performance.eventLoopUtilization(mark.utilization).active < SLICE_MS;
}

/**
 * Resolves in the check phase of the loop's next turn, whichever phase it is asked in: an
 * immediate set in a check phase runs in the next turn's, one set before it in this turn's. A
 * timer would do too, but it sleeps out its millisecond when nothing else is pending.
 */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/** Resolves at once while this turn has time left; else in a later turn. A worker thread's loop serves no requests: it never waits. */
export async function pace(): Promise<void> {
  if (!isMainThread) return;
  while (!turnHasTime()) await nextTurn();
}
