// The server's log lines are gathered and written 16 KiB at a time (src/log-batch.ts): none is
// lost, reordered or split, and none waits past a flush.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { LineBatch } from '../../src/log-batch.ts';

function recordingSink() {
  const writes: string[] = [];
  return { writes, sink: { write: (chunk: string) => writes.push(chunk) } };
}

test('lines are held until a batch fills, then handed over in order as one write', () => {
  const { writes, sink } = recordingSink();
  const batch = new LineBatch(sink, 140);
  const line = (n: number) => `{"n":${n},"pad":"${'x'.repeat(20)}"}\n`; // 37 characters
  batch.write(line(1));
  batch.write(line(2));
  batch.write(line(3));
  assert.deepEqual(writes, [], 'three lines (111 characters < 140) are still gathered');
  batch.write(line(4));
  assert.deepEqual(writes, [line(1) + line(2) + line(3) + line(4)]);
  batch.write(line(5));
  assert.equal(writes.length, 1);
});

test('flush hands over what has gathered, calls back, and writes nothing when empty', () => {
  const { writes, sink } = recordingSink();
  const batch = new LineBatch(sink, 4096);
  let called = 0;
  batch.flush(() => called++);
  assert.deepEqual(writes, []);
  batch.write('a\n');
  batch.write('b\n');
  batch.flush(() => called++);
  assert.deepEqual(writes, ['a\nb\n']);
  assert.equal(called, 2);
});

test('behind pino: every line arrives whole and in order, including non-ASCII text', () => {
  const { writes, sink } = recordingSink();
  const batch = new LineBatch(sink, 4096);
  const logger = pino({ base: null, timestamp: false }, batch);
  for (let i = 0; i < 500; i++) logger.info({ i, who: 'Zoë ☎' }, 'request');
  logger.flush();
  assert.ok(writes.length > 1 && writes.length < 500, `${writes.length} writes for 500 lines`);
  const lines = writes.join('').split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l) as { i: number; who: string }).map(({ i, who }) => `${i} ${who}`),
    Array.from({ length: 500 }, (_, i) => `${i} Zoë ☎`),
  );
});
