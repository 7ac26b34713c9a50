// The cost of one request's log line (api.md §8 keeps info-level logging in the HTTP comparison):
// the server's logger (src/main.ts, redaction included) writing to /dev/null through three
// destinations, a few lines per event-loop turn as a busy server writes them. CPU time of this
// process per line (libuv's write threads included), medians of interleaved runs.

import pino from 'pino';
import { batchedDestination } from '../src/log-batch.ts';
import { createLogger } from '../src/main.ts';
import { median, table } from './core/measure.ts';

const LINES_PER_TURN = 5;

function cpuPerLine(logger: pino.Logger, lines: number): Promise<number> {
  const line = { reqId: 'req-1a2b3c', method: 'GET', url: '/v2/accounts/4f1c2a9e8d7b6c5a4f3e2d1c0b9a8f7e/access_lists/check?ip=203.0.113.9&user_agent=bench', remote: '127.0.0.1', status: 200, ms: 0.21 };
  return new Promise((resolve) => {
    const start = process.cpuUsage();
    let written = 0;
    const turn = () => {
      for (let k = 0; k < LINES_PER_TURN; k++) logger.info(line, 'request');
      written += LINES_PER_TURN;
      if (written < lines) setImmediate(turn);
      else {
        const used = process.cpuUsage(start);
        resolve((used.user + used.system) / lines);
      }
    };
    turn();
  });
}

export async function runLoggingBench(quick: boolean): Promise<void> {
  const lines = quick ? 20_000 : 100_000;
  const runs = quick ? 5 : 9;
  const variants = [
    { name: 'formatting only (a destination that drops the line)', logger: createLogger('info', { write: () => undefined }) },
    { name: 'pino.destination, 4 KiB buffer (async)', logger: createLogger('info', pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 })) },
    { name: "gathered, then written 4 KiB at a time (the server's)", logger: createLogger('info', batchedDestination('/dev/null')) },
  ];
  const samples = variants.map(() => [] as number[]);
  for (const v of variants) await cpuPerLine(v.logger, lines / 4); // warm-up
  for (let r = 0; r < runs; r++) {
    for (const [i, v] of variants.entries()) samples[i]!.push(await cpuPerLine(v.logger, lines));
  }
  const format = median(samples[0]!);
  console.log(`One request's log line, ${lines.toLocaleString('en')} lines × ${runs} runs, ${LINES_PER_TURN} per event-loop turn (CPU µs per line, medians):\n`);
  const rows = variants.map((v, i) => {
    const us = median(samples[i]!);
    return [v.name, us.toFixed(2), i === 0 ? '' : (us - format).toFixed(2)];
  });
  console.log(table(['destination', 'µs/line', 'writing alone'], rows));
  console.log('\npino.destination measures all it holds on every write (Buffer.byteLength of its pending string).');
}
