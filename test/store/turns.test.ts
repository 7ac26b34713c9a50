// Issue 23: work done in slices shares one budget per turn of the event loop, whoever does it,
// so a timer (a SIP packet, a decision) waits behind a few milliseconds of it, not all of it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
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
