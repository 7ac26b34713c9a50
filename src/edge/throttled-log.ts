// A log line that a flood cannot multiply: the first occurrence is written at once, later ones
// within the same second are only counted, and the count is written with the next line (or a
// second later, so the last burst is never lost). The clock and the timer are injected for tests.

export interface ThrottleClock {
  now(): number;
  later(ms: number, fn: () => void): void;
}

const realClock: ThrottleClock = {
  now: () => Date.now(),
  later: (ms, fn) => void setTimeout(fn, ms).unref(),
};

export class ThrottledLog<T> {
  private lastWritten = -Infinity;
  private suppressed = 0;
  private flushScheduled = false;

  /** `write(item, suppressed)`: `item` undefined when only the count of suppressed ones is due. */
  constructor(
    private readonly write: (item: T | undefined, suppressed: number) => void,
    private readonly intervalMs = 1000,
    private readonly clock: ThrottleClock = realClock,
  ) {}

  add(item: T): void {
    const now = this.clock.now();
    if (now - this.lastWritten >= this.intervalMs) {
      this.lastWritten = now;
      const suppressed = this.suppressed;
      this.suppressed = 0;
      this.write(item, suppressed);
      return;
    }
    this.suppressed++;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.clock.later(this.lastWritten + this.intervalMs - now, () => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.suppressed === 0) return;
    this.lastWritten = this.clock.now();
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.write(undefined, suppressed);
  }
}
