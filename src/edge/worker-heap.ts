// How a SIP worker's V8 heap is set up (issue 22): the flags cluster.ts starts a worker with, and
// what the worker does so that a quiet spell does not cost its next burst of calls.

/**
 * V8's memory reducer collects and shrinks an idle process's heap (here about 80 s into a lull),
 * and a worker's next traffic paid for it: at 4,000 answered calls/s after 150 s idle, the first
 * half second's round trips reached 40–80 ms and the CPU a call rose 13–53 % for that rung,
 * against 20 ms and 7–10 % with the reducer off (docs/performance.md, issue 22). What it would
 * give back is the young generation and the garbage of the last burst, which traffic takes again.
 * For the same reason the young generation starts at the size V8 would let it grow to (16 MiB a
 * semi-space): an answered call allocates about 40 KB, and V8's own sizing kept the young generation
 * at a few MiB, collecting it 35–60 times a second at 4,000 calls/s; at 16 MiB it is 9 times, and
 * the CPU a call fell by 9 % (77.5 against 85.0 µs, medians of five rungs each, turn about; under
 * half a core at 3,000 calls/s, eight rounds, the two were equal).
 */
export const WORKER_V8_FLAGS = ['--no-memory-reducer', '--min-semi-space-size=16'];

/**
 * At a young collection, V8 gives back the idle half of the young generation (16 MiB) when the
 * process allocated less than 1 KB a millisecond over the last seconds (heap.cc's
 * kLowAllocationThroughput; no flag but --predictable turns it off, and that one also fixes V8's
 * random seed, which the hash seed is drawn from, and makes collection single-threaded). An idle
 * worker's first collection after a quiet spell of ~5 s or more did that, and the burst that
 * followed took the memory back a page at a time: ~3,500 more page faults in its first 400 calls,
 * which under half a core at 3,000 answered calls/s throttled the worker period after period and
 * put the rung's p99 at 8–64 ms against 4 ms after a 2 s gap (docs/performance.md). A standby node
 * taking over a failed one's traffic meets exactly that. So the worker allocates ~2.7 KB a
 * millisecond of short-lived garbage all the time: under traffic it adds ~2 % to what calls
 * allocate, and it costs a few microseconds a tick.
 */
const HOLD_TICK_MS = 100;
const HOLD_ARRAYS_A_TICK = 1000;
const HOLD_ARRAY_LENGTH = 32;

/** Keeps the process's allocation rate above V8's give-back threshold for as long as it runs. */
export function holdYoungGeneration(): void {
  // A store the optimiser must keep: the arrays are really allocated.
  const garbage: { last: unknown } = { last: null };
  const timer = setInterval(() => {
    for (let i = 0; i < HOLD_ARRAYS_A_TICK; i++) garbage.last = new Array(HOLD_ARRAY_LENGTH);
  }, HOLD_TICK_MS);
  timer.unref();
}
