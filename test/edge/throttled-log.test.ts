import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThrottledLog, type ThrottleClock } from '../../src/edge/throttled-log.ts';

/** A clock the test moves by hand; timers fire when it passes their time. */
class ManualClock implements ThrottleClock {
  at = 0;
  private timers: Array<{ at: number; fn: () => void }> = [];
  now = () => this.at;
  later = (ms: number, fn: () => void) => void this.timers.push({ at: this.at + ms, fn });
  advance(ms: number): void {
    const target = this.at + ms;
    for (let next = this.dueBy(target); next !== undefined; next = this.dueBy(target)) {
      this.timers = this.timers.filter((t) => t !== next);
      this.at = next.at;
      next.fn();
    }
    this.at = target;
  }
  private dueBy(target: number) {
    return this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
  }
}

describe('ThrottledLog', () => {
  it('writes the first of a burst at once, counts the rest, and writes the count a second later', () => {
    const clock = new ManualClock();
    const lines: Array<[string | undefined, number]> = [];
    const log = new ThrottledLog<string>((item, suppressed) => lines.push([item, suppressed]), 1000, clock);
    for (let i = 0; i < 1000; i++) {
      log.add(`e${i}`);
      clock.advance(0.5);
    }
    assert.deepEqual(lines, [['e0', 0]]);
    clock.advance(600);
    assert.deepEqual(lines, [['e0', 0], [undefined, 999]]);
    clock.advance(5000);
    assert.equal(lines.length, 2, 'nothing more once the burst is over');
  });

  it('a failure after a quiet second is written at once, with the count of those it hid', () => {
    const clock = new ManualClock();
    const lines: Array<[string | undefined, number]> = [];
    const log = new ThrottledLog<string>((item, suppressed) => lines.push([item, suppressed]), 1000, clock);
    log.add('a');
    clock.advance(10);
    log.add('b');
    log.add('c');
    clock.advance(2000);
    log.add('d');
    assert.deepEqual(lines, [['a', 0], [undefined, 2], ['d', 0]]);
  });
});
