import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QueueDelay, type QueueClock } from '../../src/edge/queue-delay.ts';

/** Turns of the event loop by hand: `turn(n, msEach)` reads n datagrams, then ends the turn. */
function loop() {
  let now = 0;
  let pending: Array<() => void> = [];
  const clock: QueueClock = { now: () => now, afterTurn: (fn) => void pending.push(fn) };
  const delay = new QueueDelay(32, clock);
  return {
    turn(reads: number, msEach: number): number[] {
      const seen: number[] = [];
      for (let i = 0; i < reads; i++) {
        seen.push(delay.read());
        now += msEach;
      }
      const due = pending;
      pending = [];
      for (const fn of due) fn();
      return seen;
    },
    idle(ms: number) {
      now += ms;
    },
  };
}

describe('QueueDelay', () => {
  it('stays zero while each turn empties the queue, however long the edge was idle or a turn took', () => {
    const l = loop();
    for (let i = 0; i < 100; i++) {
      l.idle(1000);
      assert.equal(Math.max(...l.turn(31, 10)), 0);
    }
  });

  it('grows while every turn reads a full batch, and falls back once a turn empties the queue', () => {
    const l = loop();
    const waits = [1, 2, 3, 4, 5].map(() => Math.max(...l.turn(32, 1)));
    assert.deepEqual(waits, [0, 63, 95, 127, 159], 'a full batch each turn: the backlog is as old as its first read');
    assert.equal(Math.max(...l.turn(7, 1)), 166, 'the turn that empties the queue still reads old datagrams');
    assert.equal(Math.max(...l.turn(32, 1)), 0);
  });
});
