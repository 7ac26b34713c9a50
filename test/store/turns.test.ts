// Issue 23: work done in slices shares one budget per turn of the event loop, whoever does it,
// so a timer (a SIP packet, a decision) waits behind a few milliseconds of it, not all of it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { performance } from 'node:perf_hooks';
import { pace } from '../../src/store/turns.ts';

test('slices from several paced loops leave the event loop a turn every few milliseconds', async () => {
  const events: string[] = [];
  setTimeout(() => events.push('timer'), 0);
  // Three loops of ten one-millisecond slices, started together: 30 ms back to back unpaced.
  await Promise.all(
    ['a', 'b', 'c'].map(async (name) => {
      for (let i = 0; i < 10; i++) {
        await pace();
        events.push(`${name}${i}`);
        const end = performance.now() + 1;
        while (performance.now() < end);
      }
    }),
  );
  const timerAt = events.indexOf('timer');
  assert.ok(timerAt >= 0 && timerAt <= 8, `the timer ran after ${timerAt} slices: ${events.join(' ')}`);
});

test('a slice that waits for the next turn does not sleep when nothing else is pending', async () => {
  // Each slice outlasts the budget, so each waits for a turn. A timer would sleep out its
  // millisecond every time (the loop idle about half the while); the next turn's check phase
  // comes at once.
  const before = performance.eventLoopUtilization();
  for (let i = 0; i < 100; i++) {
    await pace();
    const end = performance.now() + 1.5;
    while (performance.now() < end);
  }
  const { idle, active } = performance.eventLoopUtilization(before);
  assert.ok(idle < 0.1 * (idle + active), `the loop idled ${idle.toFixed(1)} of ${(idle + active).toFixed(1)} ms`);
});
