// Long work done on the event loop (a bulk import's rows, a burst of index changes) gives the
// loop back every few milliseconds, so no SIP packet or decision waits behind it for longer
// (issue 23: at most 5 ms).

const SLICE_MS = 2;

export class Pacer {
  private since = performance.now();

  /** Resolves at once, or after one turn of the event loop once a slice's time has run. */
  async pause(): Promise<void> {
    if (performance.now() - this.since < SLICE_MS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.since = performance.now();
  }
}
